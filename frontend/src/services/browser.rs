//! Small browser services: the clock and time zone, the page's query string, downloads
//! (Blob and an object URL) and the clipboard.

use wasm_bindgen::JsCast;

/// Milliseconds since the Unix epoch, by the browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Minutes to add to UTC for local time (JavaScript's `getTimezoneOffset`, negated).
pub fn tz_offset_min() -> i32 {
    thread_local! {
        static OFFSET: i32 = -(js_sys::Date::new_0().get_timezone_offset() as i32);
    }
    OFFSET.with(|o| *o)
}

/// The page's query string (`?token=...`), or empty.
pub fn page_search() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

/// The page's token (`?token=` in its URL), passed on to `/ws` and `/api`.
pub fn page_token() -> Option<String> {
    crate::link::query_param(&page_search(), "token").filter(|t| !t.is_empty())
}

/// Offers `content` as a file download named `name`.
pub fn download(name: &str, mime: &str, content: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(content));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)
        .map_err(|e| format!("could not build the file: {e:?}"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|e| format!("could not build the file: {e:?}"))?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| format!("{e:?}"))?
        .dyn_into()
        .map_err(|_| "not an anchor")?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // Let the download start before the URL goes.
    let url2 = url.clone();
    gloo_timers::callback::Timeout::new(10_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url2);
    })
    .forget();
    Ok(())
}

/// Copies text to the clipboard (best effort: needs a secure context or localhost).
pub fn copy(text: &str) {
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
}

/// A number from `localStorage`, if set and valid.
pub fn stored_usize(key: &str) -> Option<usize> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(key)
        .ok()??
        .parse()
        .ok()
}

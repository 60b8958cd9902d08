//! Small helpers the panels' forms share: reading inputs, and the payload a send form
//! builds from its text, encoding and "append newline" choice.

use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use wirelab_shared::Encoding;
use wirelab_shared::payload::hex_decode;
use yew::prelude::*;

/// The value of the `<input>` an event came from.
pub fn input_value(e: &InputEvent) -> String {
    e.target()
        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        .map(|i| i.value())
        .unwrap_or_default()
}

/// The value of the `<select>` a change came from.
pub fn select_value(e: &Event) -> String {
    e.target()
        .and_then(|t| t.dyn_into::<HtmlSelectElement>().ok())
        .map(|s| s.value())
        .unwrap_or_default()
}

/// Whether the checkbox a change came from is checked.
pub fn checked(e: &Event) -> bool {
    e.target()
        .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        .is_some_and(|i| i.checked())
}

/// The current value of the input or select behind `node` (what is on screen, even if
/// no input event told the component: a test driver's "clear" fires none).
pub fn node_value(node: &NodeRef) -> String {
    if let Some(i) = node.cast::<HtmlInputElement>() {
        i.value()
    } else if let Some(s) = node.cast::<HtmlSelectElement>() {
        s.value()
    } else {
        String::new()
    }
}

/// Sets the value of the input behind `node`.
pub fn set_node_value(node: &NodeRef, value: &str) {
    if let Some(i) = node.cast::<HtmlInputElement>() {
        i.set_value(value);
    }
}

/// Whether the checkbox behind `node` is checked.
pub fn node_checked(node: &NodeRef) -> bool {
    node.cast::<HtmlInputElement>().is_some_and(|i| i.checked())
}

/// What a send form sends: the data and its encoding, or why it cannot go.
pub fn payload(text: &str, hex: bool, newline: bool) -> Result<(String, Encoding), String> {
    if hex {
        hex_decode(text).map_err(|e| format!("Not valid hex: {e}."))?;
        if text.trim().is_empty() {
            return Err("Nothing to send: type some hex bytes, like 68 69 0a.".into());
        }
        Ok((text.to_owned(), Encoding::Hex))
    } else {
        if text.is_empty() && !newline {
            return Err("Nothing to send: type some text.".into());
        }
        let mut data = text.to_owned();
        if newline {
            data.push('\n');
        }
        Ok((data, Encoding::Text))
    }
}

/// `onsubmit` that keeps the page from reloading and calls `f`.
pub fn on_submit(f: impl Fn() + 'static) -> Callback<SubmitEvent> {
    Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        f();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_payloads() {
        assert_eq!(
            payload("hi", false, true),
            Ok(("hi\n".into(), Encoding::Text))
        );
        assert_eq!(
            payload("hi", false, false),
            Ok(("hi".into(), Encoding::Text))
        );
        assert_eq!(
            payload("68 69", true, true),
            Ok(("68 69".into(), Encoding::Hex))
        );
        assert!(payload("6", true, false).is_err());
        assert!(payload("", true, false).is_err());
        assert!(payload("", false, false).is_err());
    }
}

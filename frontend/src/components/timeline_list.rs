//! The virtualized timeline: only the rows in view (plus a few either side) are in the
//! DOM, at a fixed height, inside a spacer as tall as the whole filtered view.
//!
//! Autoscroll follows the newest row until the user scrolls up; then the view holds
//! still (even while the ring drops old rows above it) and a "N new" button offers the
//! way back. Keyboard: arrows move the selection, Home/End jump, Escape deselects.

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::HtmlElement;
use yew::prelude::*;

use crate::components::row_view::RowView;
use crate::ctx::use_timeline;
use crate::fmt;

/// Row height in pixels; the CSS (`--row-h`) must agree.
pub const ROW_H: f64 = 22.0;
/// Rows rendered beyond each edge of the viewport.
const OVERSCAN: usize = 4;

#[derive(Properties, PartialEq)]
pub struct ListProps {
    pub selected: Option<u64>,
    pub onselect: Callback<Option<u64>>,
    /// Whether autoscroll is on; the list turns it off when the user scrolls up.
    pub follow: bool,
    pub onfollow: Callback<bool>,
    /// A command that makes an event, for the empty timeline.
    #[prop_or_default]
    pub try_cmd: String,
    /// Shown at the right of the column header row (the timeline's actions).
    #[prop_or_default]
    pub children: Html,
}

/// What the list remembers between renders without re-rendering for it.
#[derive(Default)]
struct Marks {
    /// `view_evicted` when the scroll position was last read.
    evicted: u64,
    /// `view_prepended` when the scroll position was last read.
    prepended: u64,
    /// `view_gen` at the last render.
    gen_: u64,
    /// `view_appended` when autoscroll stopped.
    appended_at_pause: u64,
    /// Whether the last render followed, to notice a pause from any source (the user's
    /// scroll, the wheel, the pause button, the keyboard).
    was_following: bool,
    /// Set when a handler already noted where the pause began.
    pause_noted: bool,
    /// The scroll position the list last put or saw: a position that differs from it
    /// was the user's doing (even before the browser's scroll event says so).
    last_set: f64,
}

#[function_component]
pub fn TimelineList(props: &ListProps) -> Html {
    let tl = use_timeline();
    let scroller = use_node_ref();
    let scroll_top = use_state_eq(|| 0.0f64);
    let height = use_state_eq(|| 600.0f64);
    let marks = use_mut_ref(|| Marks {
        was_following: true,
        evicted: tl.view_evicted,
        prepended: tl.view_prepended,
        gen_: tl.view_gen,
        ..Marks::default()
    });

    {
        // A pause, whoever made it: new rows are counted from here.
        let mut m = marks.borrow_mut();
        if !props.follow && m.was_following && !m.pause_noted {
            m.appended_at_pause = tl.view_appended;
        }
        m.pause_noted = false;
        m.was_following = props.follow;
    }
    let total = tl.view.len();
    let full_h = total as f64 * ROW_H;
    // Where the viewport is: at the bottom when following; else where the user left it,
    // moved up by the rows that left the front since (so the same rows stay in view).
    let top = if props.follow {
        (full_h - *height).max(0.0)
    } else {
        let m = marks.borrow();
        let gone = tl.view_evicted.saturating_sub(m.evicted) as f64;
        let added = tl.view_prepended.saturating_sub(m.prepended) as f64;
        (*scroll_top + (added - gone) * ROW_H).clamp(0.0, (full_h - *height).max(0.0))
    };
    let first = ((top / ROW_H) as usize).saturating_sub(OVERSCAN);
    let last = (((top + *height) / ROW_H).ceil() as usize + OVERSCAN).min(total);
    let first = first.min(last);

    // After each render: put the scroll position where `top` says, unless the user
    // moved it since (their scroll event may come after this render).
    {
        let scroller = scroller.clone();
        let marks = marks.clone();
        let (scroll_top, height) = (scroll_top.clone(), height.clone());
        let prepended = tl.view_prepended;
        let (evicted, gen_, appended, follow) =
            (tl.view_evicted, tl.view_gen, tl.view_appended, props.follow);
        let selected_index = props.selected.and_then(|s| tl.view_index(s));
        let onfollow = props.onfollow.clone();
        use_effect(move || {
            let Some(el) = scroller.cast::<HtmlElement>() else {
                return;
            };
            let mut m = marks.borrow_mut();
            let cur = el.scroll_top() as f64;
            let ch = el.client_height() as f64;
            height.set(ch);
            let at_bottom = cur + ch >= el.scroll_height() as f64 - ROW_H * 1.5;
            if follow && (cur - m.last_set).abs() > ROW_H && !at_bottom {
                m.appended_at_pause = appended;
                m.pause_noted = true;
                m.evicted = evicted;
                m.prepended = prepended;
                m.last_set = cur;
                scroll_top.set(cur);
                onfollow.emit(false);
                return;
            }
            let mut want = top;
            if m.gen_ != gen_ {
                // A new view (filter, clear): keep the selection in sight, else follow.
                m.gen_ = gen_;
                match selected_index {
                    Some(i) if !follow => want = (i as f64 * ROW_H - ch / 2.0).max(0.0),
                    _ if !follow => onfollow.emit(true),
                    _ => {}
                }
            }
            m.evicted = evicted;
            m.prepended = prepended;
            if (cur - want).abs() >= 1.0 {
                el.set_scroll_top(want as i32);
            }
            m.last_set = el.scroll_top() as f64;
            scroll_top.set(m.last_set);
        });
    }

    // Follow the window's size.
    {
        let scroller = scroller.clone();
        let height = height.clone();
        use_effect_with((), move |_| {
            let listener = Closure::<dyn FnMut()>::new(move || {
                if let Some(el) = scroller.cast::<HtmlElement>() {
                    height.set(el.client_height() as f64);
                }
            });
            let window = web_sys::window();
            if let Some(w) = &window {
                let _ =
                    w.add_event_listener_with_callback("resize", listener.as_ref().unchecked_ref());
            }
            move || {
                if let Some(w) = window {
                    let _ = w.remove_event_listener_with_callback(
                        "resize",
                        listener.as_ref().unchecked_ref(),
                    );
                }
            }
        });
    }

    let onscroll = {
        let scroller = scroller.clone();
        let marks = marks.clone();
        let scroll_top = scroll_top.clone();
        let onfollow = props.onfollow.clone();
        let (follow, appended, evicted) = (props.follow, tl.view_appended, tl.view_evicted);
        let prepended = tl.view_prepended;
        Callback::from(move |_: Event| {
            let Some(el) = scroller.cast::<HtmlElement>() else {
                return;
            };
            let st = el.scroll_top() as f64;
            let at_bottom =
                st + el.client_height() as f64 >= el.scroll_height() as f64 - ROW_H * 1.5;
            let mut m = marks.borrow_mut();
            let own = (st - m.last_set).abs() < 1.0;
            m.last_set = st;
            m.evicted = evicted;
            m.prepended = prepended;
            scroll_top.set(st);
            if own {
                return;
            }
            if at_bottom && !follow {
                onfollow.emit(true);
            } else if !at_bottom && follow {
                m.appended_at_pause = appended;
                m.pause_noted = true;
                onfollow.emit(false);
            }
        })
    };
    // A wheel turned up stops autoscroll at once, before any scroll event.
    let onwheel = {
        let marks = marks.clone();
        let onfollow = props.onfollow.clone();
        let (follow, appended) = (props.follow, tl.view_appended);
        Callback::from(move |e: WheelEvent| {
            if follow && e.delta_y() < 0.0 {
                let mut m = marks.borrow_mut();
                m.appended_at_pause = appended;
                m.pause_noted = true;
                onfollow.emit(false);
            }
        })
    };

    let onselect_row = {
        let cb = props.onselect.clone();
        use_callback((), move |seq: u64, _| cb.emit(Some(seq)))
    };

    let onkeydown = {
        let tl = tl.clone();
        let (marks, scroll_top, evicted) = (marks.clone(), scroll_top.clone(), tl.view_evicted);
        let prepended = tl.view_prepended;
        let cb = props.onselect.clone();
        let onfollow = props.onfollow.clone();
        let selected = props.selected;
        let scroller = scroller.clone();
        Callback::from(move |e: KeyboardEvent| {
            let n = tl.view.len();
            if n == 0 {
                return;
            }
            let cur = selected.and_then(|s| tl.view_index(s));
            let page = scroller
                .cast::<HtmlElement>()
                .map_or(20, |el| (el.client_height() as f64 / ROW_H) as usize)
                .max(1);
            let next = match e.key().as_str() {
                "ArrowDown" => Some(cur.map_or(n - 1, |i| (i + 1).min(n - 1))),
                "ArrowUp" => Some(cur.map_or(n - 1, |i| i.saturating_sub(1))),
                "PageDown" => Some(cur.map_or(n - 1, |i| (i + page).min(n - 1))),
                "PageUp" => Some(cur.map_or(n - 1, |i| i.saturating_sub(page))),
                "Home" => Some(0),
                "End" => Some(n - 1),
                "Escape" => {
                    cb.emit(None);
                    None
                }
                _ => return,
            };
            e.prevent_default();
            if let Some(i) = next {
                let seq = tl.view.get(i).map(|r| r.seq);
                cb.emit(seq);
                onfollow.emit(i == n - 1);
                if let Some(el) = scroller.cast::<HtmlElement>() {
                    let (y, h) = (i as f64 * ROW_H, el.client_height() as f64);
                    let st = el.scroll_top() as f64;
                    if y < st {
                        el.set_scroll_top(y as i32);
                    } else if y + ROW_H > st + h {
                        el.set_scroll_top((y + ROW_H - h) as i32);
                    }
                    let now = el.scroll_top() as f64;
                    let mut m = marks.borrow_mut();
                    m.last_set = now;
                    m.evicted = evicted;
                    m.prepended = prepended;
                    scroll_top.set(now);
                }
            }
        })
    };

    let new_rows = if props.follow {
        0
    } else {
        tl.view_appended
            .saturating_sub(marks.borrow().appended_at_pause)
    };
    let jump = {
        let onfollow = props.onfollow.clone();
        Callback::from(move |_| onfollow.emit(true))
    };

    // Not keyed: the list's row components stay put and take the rows that scroll into
    // their place, so a flood that replaces every visible row each frame patches text and
    // attributes instead of building and tearing down as many elements.
    let rows = tl.view.range(first, last).map(|r| {
        html! {
            <RowView row={r.clone()} selected={props.selected == Some(r.seq)}
                onselect={onselect_row.clone()} />
        }
    });

    html! {
        <div class="tl-wrap">
            <div class="tl-head-wrap">
            <div class="tl-head" aria-hidden="true">
                <span class="c-time">{"time"}</span>
                <span class="c-proto">{"proto"}</span>
                <span class="c-dir">{"dir"}</span>
                <span class="c-peer">{"peer"}</span>
                <span class="c-size">{"size"}</span>
                <span class="c-prev">{"event"}</span>
            </div>
            { props.children.clone() }
            </div>
            <div id="timeline-list" class="tl-scroll" ref={scroller} onscroll={onscroll} onwheel={onwheel}
                tabindex="0" role="grid" aria-label="event timeline" aria-rowcount={total.to_string()}
                onkeydown={onkeydown}>
                <div class="tl-spacer" style={format!("height:{}px", fmt::short(full_h, 1))}>
                    <div class="tl-rows" style={format!("transform:translateY({}px)", fmt::short(first as f64 * ROW_H, 1))}>
                        { for rows }
                    </div>
                </div>
                if total == 0 {
                    <div class="tl-empty">
                        if tl.ring.is_empty() {
                            {"Waiting for events. Try one of the commands in a service tab, e.g. "}
                            <code>{ props.try_cmd.clone() }</code>
                        } else {
                            {"No event matches the filter."}
                        }
                    </div>
                }
            </div>
            if new_rows > 0 {
                <button id="jump-new" class="jump-new" onclick={jump}>
                    { format!("↓ {} new", fmt::count(new_rows)) }
                </button>
            }
        </div>
    }
}

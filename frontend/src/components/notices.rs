//! Messages that belong to no form (reconnects, closes, server errors without an id),
//! as dismissible toasts in a corner.
//!
//! A function the app calls with its lab, not a component: a component's own code was
//! 1 KiB of the gzipped wasm, and the app renders whenever the lab changes anyway.

use yew::prelude::*;

use crate::ctx::LabCtx;
use crate::lab::LabAction;

/// The lab's notices, each with its dismiss button.
pub fn notices(lab: &LabCtx) -> Html {
    if lab.notices.is_empty() {
        return html! {};
    }
    html! {
        <div class="notices" role="log" aria-live="polite">
            { for lab.notices.iter().map(|n| {
                let onclick = {
                    let (lab, id) = (lab.clone(), n.id);
                    Callback::from(move |_| lab.dispatch(LabAction::DismissNotice(id)))
                };
                html! {
                    <div class={classes!("notice", n.level)} key={n.id}>
                        <span>{ &n.text }</span>
                        <button class="small" onclick={onclick} aria-label="dismiss">{"×"}</button>
                    </div>
                }
            }) }
        </div>
    }
}

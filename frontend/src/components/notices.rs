//! Messages that belong to no form (reconnects, closes, server errors without an id),
//! as dismissible toasts in a corner.

use yew::prelude::*;

use crate::ctx::use_lab;
use crate::lab::LabAction;

#[function_component]
pub fn Notices() -> Html {
    let lab = use_lab();
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

//! The result of the last command a form sent (`ack` or `error`), right under the form.

use yew::prelude::*;

use crate::ctx::use_lab;
use crate::lab::CmdResult;

#[derive(Properties, PartialEq)]
pub struct StatusProps {
    /// The form's key, as given to `Commander::run`.
    pub form: &'static str,
}

#[function_component]
pub fn StatusLine(props: &StatusProps) -> Html {
    let lab = use_lab();
    let (class, text) = match lab.result(props.form) {
        Some(CmdResult::Pending(t)) => ("pending", format!("… {t}")),
        Some(CmdResult::Ok(t)) => ("ok", format!("✓ {t}")),
        Some(CmdResult::Err(t)) => ("err", format!("✗ {t}")),
        None => ("", String::new()),
    };
    html! {
        <div class={classes!("status", class)} data-form={props.form} role="status" aria-live="polite">
            { text }
        </div>
    }
}

//! The result of the last command a form sent (`ack` or `error`), right under the form.

//!
//! A function its form's component calls with the lab (each of them renders on the lab's
//! changes), not a component of its own: that was half a KiB of the gzipped wasm.

use yew::prelude::*;

use crate::lab::{CmdResult, Lab};

/// The line for `form` (its key, as given to `Commander::run`).
pub fn status_line(lab: &Lab, form: &'static str) -> Html {
    let (class, text) = match lab.result(form) {
        Some(CmdResult::Pending(t)) => ("pending", format!("… {t}")),
        Some(CmdResult::Ok(t)) => ("ok", format!("✓ {t}")),
        Some(CmdResult::Err(t)) => ("err", format!("✗ {t}")),
        None => ("", String::new()),
    };
    html! {
        <div class={classes!("status", class)} data-form={form} role="status" aria-live="polite">
            { text }
        </div>
    }
}

//! The send form of the TCP, UDP and WebSocket-service panels: a target (one connection,
//! peer or client, or all), text or hex, the data, and an optional "\n" to end the text
//! with. Each panel says what its targets are and which command a send makes.
//!
//! A hook for the form's state and a function for its markup, not a component: the three
//! panels share one copy of the code without a component's own (props, create, compare).

use wirelab_shared::{CommandKind, Encoding};
use yew::prelude::*;

use crate::components::forms::{
    node_checked, node_value, on_submit, payload, select_value, set_node_value,
};
use crate::components::status_line::status_line;
use crate::ctx::Commander;
use crate::lab::Lab;

/// The form's own state: the encoding chosen, and its inputs.
#[derive(Clone)]
pub struct SendState {
    hex: UseStateHandle<bool>,
    text: NodeRef,
    target: NodeRef,
    newline: NodeRef,
}

#[hook]
pub fn use_send_form() -> SendState {
    SendState {
        // A named function, not a closure: the page's flags share one `use_state_eq`.
        hex: use_state_eq(bool::default),
        text: use_node_ref(),
        target: use_node_ref(),
        newline: use_node_ref(),
    }
}

/// A send form's chosen target, `all` at first. One hook for the three panels: `use_state`
/// is made again for every closure it is given.
#[hook]
pub fn use_target() -> UseStateHandle<String> {
    use_state(|| "all".to_owned())
}

/// What a panel's send form is.
pub struct SendForm {
    /// The form's name: its status line's, and its elements' ids (`{name}-target`,
    /// `-enc`, `-input`, `-newline`, `-button`).
    pub name: &'static str,
    /// The form's accessible name, and its heading if it has one.
    pub label: &'static str,
    pub heading: Option<&'static str>,
    /// The targets as (value, label); before them, `all` for every one.
    pub targets: Vec<(String, String)>,
    pub all: &'static str,
    /// The chosen target, which the panel's table sets too.
    pub target: UseStateHandle<String>,
    /// The encoding select's accessible name, and its hex option's label.
    pub enc_label: &'static str,
    pub hex_label: &'static str,
    /// The data input's accessible name, and its placeholder in hex.
    pub input_label: &'static str,
    pub hex_placeholder: &'static str,
    /// The "\n" box's tooltip; `None` for no such box.
    pub newline: Option<&'static str>,
    /// What a send makes of the chosen target (`all` or a target's value), the data and
    /// its encoding: the command, and what it does, for the status line.
    pub command: fn(String, String, Encoding) -> (CommandKind, String),
}

/// The form, sending through `cmd`; its status line from `lab`.
pub fn send_form(state: &SendState, cmd: &Commander, lab: &Lab, form: SendForm) -> Html {
    let SendState {
        hex,
        text,
        target: target_ref,
        newline,
    } = state.clone();
    let (name, target) = (form.name, form.target);
    let send = {
        let (cmd, hex, text, target_ref, newline, target) = (
            cmd.clone(),
            hex.clone(),
            text.clone(),
            target_ref.clone(),
            newline.clone(),
            target.clone(),
        );
        let command = form.command;
        on_submit(
            move || match payload(&node_value(&text), *hex, node_checked(&newline)) {
                Ok((data, enc)) => {
                    let chosen = node_value(&target_ref);
                    target.set(chosen.clone());
                    let (kind, what) = command(chosen, data, enc);
                    cmd.run(name, what, kind);
                    set_node_value(&text, "");
                }
                Err(e) => cmd.refuse(name, e),
            },
        )
    };
    let on_target = {
        let target = target.clone();
        Callback::from(move |e: Event| target.set(select_value(&e)))
    };
    let on_enc = {
        let hex = hex.clone();
        Callback::from(move |e: Event| hex.set(select_value(&e) == "hex"))
    };

    html! {
        <form onsubmit={send} aria-label={form.label}>
            if let Some(heading) = form.heading {
                <h3>{ heading }</h3>
            }
            <div class="row-form">
                <select id={format!("{name}-target")} ref={target_ref} aria-label="to" onchange={on_target}>
                    <option value="all" selected={*target == "all"}>{ form.all }</option>
                    { for form.targets.into_iter().map(|(value, label)| {
                        let selected = *target == value;
                        html! { <option value={value} selected={selected}>{ label }</option> }
                    }) }
                </select>
                <select id={format!("{name}-enc")} aria-label={form.enc_label} onchange={on_enc}>
                    <option value="text" selected={!*hex}>{"text"}</option>
                    <option value="hex" selected={*hex}>{ form.hex_label }</option>
                </select>
                <input id={format!("{name}-input")} ref={text} type="text" aria-label={form.input_label}
                    autocomplete="off" placeholder={if *hex { form.hex_placeholder } else { "hello" }} />
                if let Some(title) = form.newline {
                    <label class="check" title={title}>
                        <input id={format!("{name}-newline")} ref={newline} type="checkbox" checked=true disabled={*hex} />
                        {"\\n"}
                    </label>
                }
                <button id={format!("{name}-button")} class="primary" type="submit">{"Send"}</button>
            </div>
            { status_line(lab, name) }
        </form>
    }
}

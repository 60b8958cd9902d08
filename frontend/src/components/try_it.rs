//! "Try it": the shell commands that exercise a service by hand, each with a copy button.

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use crate::services::browser;

/// Which command was copied last (it says "copied" for 1.5 s).
pub type Copied = UseStateHandle<Option<usize>>;

#[hook]
pub fn use_try_it() -> Copied {
    use_state_eq(|| None)
}

/// A service panel's head: its name, its address, and the commands, each with its copy
/// button. A function the panel calls with the state from [`use_try_it`], not a component
/// (see the crate's layout); one for all the panels, as their heads are alike.
pub fn panel_head(
    name: &'static str,
    addr: String,
    copied: &Copied,
    commands: Vec<String>,
) -> Html {
    html! {
        <div class="panel-head">
            <h2>{ name }<span class="addr">{ addr }</span></h2>
            { try_it(copied, commands) }
        </div>
    }
}

/// The commands, each with its copy button.
fn try_it(copied: &Copied, commands: Vec<String>) -> Html {
    html! {
        <div class="try" aria-label="try it">
            { for commands.into_iter().enumerate().map(|(i, cmd)| {
                let label = format!("copy: {cmd}");
                let onclick = {
                    let (copied, cmd) = (copied.clone(), cmd.clone());
                    Callback::from(move |_| {
                        browser::copy(&cmd);
                        copied.set(Some(i));
                        let copied = copied.clone();
                        Timeout::new(1500, move || copied.set(None)).forget();
                    })
                };
                html! {
                    <span class="cmd">
                        <code>{ "$ " }{ cmd }</code>
                        <button class="copy" onclick={onclick} title="copy to the clipboard"
                            aria-label={label}>
                            { if **copied == Some(i) { "copied" } else { "copy" } }
                        </button>
                    </span>
                }
            }) }
        </div>
    }
}

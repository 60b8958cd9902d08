//! "Try it": the shell commands that exercise a service by hand, each with a copy button.

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use crate::services::browser;

#[derive(Properties, PartialEq)]
pub struct TryItProps {
    pub commands: Vec<String>,
}

#[function_component]
pub fn TryIt(props: &TryItProps) -> Html {
    let copied = use_state_eq(|| None::<usize>);
    html! {
        <div class="try" aria-label="try it">
            { for props.commands.iter().enumerate().map(|(i, cmd)| {
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
                            aria-label={format!("copy: {cmd}")}>
                            { if *copied == Some(i) { "copied" } else { "copy" } }
                        </button>
                    </span>
                }
            }) }
        </div>
    }
}

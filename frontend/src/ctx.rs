//! What the app hands down through contexts (after yew's `contexts` example): the two
//! stores and the command sender.

use wirelab_shared::CommandKind;
use yew::prelude::*;

use crate::components::rail::Tab;
use crate::lab::{Lab, LabAction};
use crate::services::socket::Socket;
use crate::timeline::Timeline;

/// The timeline store; changes once per animation frame while events flow.
pub type TimelineCtx = UseReducerHandle<Timeline>;
/// The lab store; changes about once a second.
pub type LabCtx = UseReducerHandle<Lab>;

/// The context that carries the lab store and the command sender: one context for both
/// (each is a `use_context` and a provider component of its own in the wasm), as every
/// component that sends commands also shows the lab. [`use_lab`] and [`use_commander`]
/// take their part.
#[derive(Clone, PartialEq)]
pub struct LabAndCommander {
    pub lab: LabCtx,
    pub cmd: Commander,
}

/// Sends commands and files their results under the form that sent them.
#[derive(Clone)]
pub struct Commander {
    pub socket: Socket,
    pub lab: UseReducerDispatcher<Lab>,
    /// Switches the page to a tab.
    pub go: Callback<Tab>,
}

impl PartialEq for Commander {
    fn eq(&self, other: &Self) -> bool {
        self.socket == other.socket
    }
}

impl Commander {
    /// Opens the TCP tab with its Faults form pointed at `proxy` (a lab service: `@udp`,
    /// `@http`) and `scope`.
    pub fn aim_fault(&self, proxy: &str, scope: String) {
        self.lab
            .dispatch(LabAction::AimFault(Some((proxy.to_owned(), scope))));
        self.go.emit(Tab::Tcp);
    }

    /// Sends `kind` from `form` (the key its result is shown under), saying `what` until
    /// the answer comes.
    pub fn run(&self, form: &'static str, what: impl Into<String>, kind: CommandKind) {
        self.send(form, what.into(), kind);
    }

    /// [`Commander::run`]'s work, made once rather than for each type of `what`.
    fn send(&self, form: &'static str, what: String, kind: CommandKind) {
        match self.socket.send(kind) {
            Ok(id) => self.lab.dispatch(LabAction::Sent { id, form, what }),
            Err(message) => self.lab.dispatch(LabAction::Refused { form, message }),
        }
    }

    /// Shows an input error next to `form` without sending anything.
    pub fn refuse(&self, form: &'static str, message: impl Into<String>) {
        self.lab.dispatch(LabAction::Refused {
            form,
            message: message.into(),
        });
    }
}

/// The timeline store from context (the app always provides it).
#[hook]
pub fn use_timeline() -> TimelineCtx {
    use_context::<TimelineCtx>().expect("the app provides the timeline")
}

/// The lab store from context.
#[hook]
pub fn use_lab() -> LabCtx {
    use_lab_and_commander().lab
}

/// The command sender from context.
#[hook]
pub fn use_commander() -> Commander {
    use_lab_and_commander().cmd
}

#[hook]
fn use_lab_and_commander() -> LabAndCommander {
    use_context::<LabAndCommander>().expect("the app provides the lab and the commander")
}

//! Splits the frames of one animation frame between the two stores: what changes the
//! timeline ([`Input`]) and what changes the lab's picture ([`LabAction`]).

use wirelab_shared::ServerMsg;

use crate::lab::LabAction;
use crate::timeline::Input;

/// The frames' effect, in arrival order within each store.
#[derive(Debug, Default)]
pub struct Routed {
    pub timeline: Vec<Input>,
    pub lab: Vec<LabAction>,
}

/// Routes a batch of frames.
pub fn route(frames: Vec<ServerMsg>) -> Routed {
    let mut out = Routed::default();
    for frame in frames {
        match frame {
            ServerMsg::Hello(h) => out.lab.push(LabAction::Hello(Box::new(h))),
            ServerMsg::Snapshot(s) => {
                out.timeline.push(Input::Snapshot {
                    backlog: s.backlog,
                    resumed: s.resumed_from.is_some(),
                    last_seq: s.last_seq,
                });
                out.timeline.push(Input::Now(s.state.ts_us));
                out.lab.push(LabAction::Snapshot {
                    state: Box::new(s.state),
                    resumed_from: s.resumed_from,
                });
            }
            ServerMsg::Events { events } => match out.timeline.last_mut() {
                // Merge consecutive batches: fewer, larger appends.
                Some(Input::Events(prev)) => prev.extend(events),
                _ => out.timeline.push(Input::Events(events)),
            },
            ServerMsg::Lagged { missed } => {
                out.timeline.push(Input::Lagged(missed));
                out.lab.push(LabAction::Notice {
                    level: "warn",
                    text: format!(
                        "This page fell behind: the lab skipped {missed} events for it (counted under \"lagged\")."
                    ),
                });
            }
            ServerMsg::Ack { id, detail } => out.lab.push(LabAction::Ack { id, detail }),
            ServerMsg::Error { id, message } => out.lab.push(LabAction::Error { id, message }),
            ServerMsg::State(s) => {
                out.timeline.push(Input::Now(s.ts_us));
                out.lab.push(LabAction::State(s));
            }
            ServerMsg::Pool(p) => out.lab.push(LabAction::Pool(Box::new(p))),
            ServerMsg::Pong { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::{Event, EventKind, LabState, Snapshot};

    fn chat(seq: u64) -> Event {
        Event {
            seq,
            ts_us: 0,
            kind: EventKind::Chat {
                from: "a".into(),
                text: "b".into(),
            },
        }
    }

    #[test]
    fn batches_merge_and_each_frame_goes_where_it_belongs() {
        let r = route(vec![
            ServerMsg::Snapshot(Box::new(Snapshot {
                backlog: vec![chat(1)],
                last_seq: 1,
                ..Default::default()
            })),
            ServerMsg::Events {
                events: vec![chat(2)],
            },
            ServerMsg::Events {
                events: vec![chat(3), chat(4)],
            },
            ServerMsg::Lagged { missed: 2 },
            ServerMsg::Events {
                events: vec![chat(7)],
            },
            ServerMsg::State(Box::new(LabState {
                ts_us: 9,
                ..Default::default()
            })),
            ServerMsg::Ack {
                id: 1,
                detail: None,
            },
        ]);
        assert_eq!(r.timeline.len(), 6);
        assert!(matches!(&r.timeline[2], Input::Events(e) if e.len() == 3));
        assert_eq!(r.timeline[3], Input::Lagged(2));
        assert_eq!(r.timeline[5], Input::Now(9));
        assert_eq!(r.lab.len(), 4);
    }
}

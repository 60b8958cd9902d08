//! [`Lab`]: what the server says about itself and its services: the connection state,
//! `hello`, the latest `state`, the pool run's figures, and the results of the commands
//! this page sent. A Yew [`Reducible`]; it changes about once a second, so the panels
//! that read it do not re-render with every event.

use std::collections::VecDeque;
use std::rc::Rc;

use wirelab_shared::{Hello, LabState, PoolStatus};
use yew::Reducible;

use crate::link::ConnStatus;

/// Points kept for the pool chart.
pub const POOL_POINTS: usize = 1200;
/// Notices kept.
pub const NOTICES: usize = 5;

/// The outcome of a command, shown next to the form that sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdResult {
    /// Sent, no answer yet.
    Pending(String),
    /// `ack`, with what the server did.
    Ok(String),
    /// `error`, with what went wrong.
    Err(String),
}

/// One point of the pool chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolPoint {
    pub elapsed_us: u64,
    pub in_use: u32,
    pub waiting: u32,
    pub idle: u32,
}

/// A message for the user that belongs to no form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: u64,
    /// `info`, `warn` or `error`.
    pub level: &'static str,
    pub text: String,
}

/// What can happen to [`Lab`].
#[derive(Debug)]
pub enum LabAction {
    Conn(ConnStatus),
    Hello(Box<Hello>),
    /// The `snapshot` frame's state, and whether it resumed where the page was.
    Snapshot {
        state: Box<LabState>,
        resumed_from: Option<u64>,
    },
    State(Box<LabState>),
    Pool(Box<PoolStatus>),
    /// A command went out from `form`.
    Sent {
        id: u64,
        form: &'static str,
        what: String,
    },
    Ack {
        id: u64,
        detail: Option<String>,
    },
    Error {
        id: Option<u64>,
        message: String,
    },
    /// A command could not go out at all (not connected, bad input).
    Refused {
        form: &'static str,
        message: String,
    },
    Notice {
        level: &'static str,
        text: String,
    },
    DismissNotice(u64),
    /// A frame the page could not read.
    BadFrame(String),
    /// The round trip of a `ping`, in milliseconds.
    Rtt(f64),
    /// Point the Faults form (on the TCP tab) at a proxy or lab service and a scope, from
    /// another tab's row; `None` once done.
    AimFault(Option<(String, String)>),
}

/// The lab as the server describes it; see the module doc.
#[derive(Clone, Debug, Default)]
pub struct Lab {
    pub conn: ConnStatus,
    pub hello: Option<Rc<Hello>>,
    pub state: Rc<LabState>,
    /// Live figures of the current (or last) pool run.
    pub pool: Option<Rc<PoolStatus>>,
    /// The current run's history, for its chart.
    pub pool_series: Rc<Vec<PoolPoint>>,
    /// The last result per form. (Lists, not maps: there are a dozen forms, and a few
    /// commands in flight at most; see `Filter::hidden` for what B-trees cost.)
    pub results: Rc<Vec<(&'static str, CmdResult)>>,
    /// Commands sent and not answered yet: id and form.
    pub pending: Rc<Vec<(u64, &'static str)>>,
    pub notices: Rc<VecDeque<Notice>>,
    next_notice: u64,
    /// Frames that did not parse.
    pub bad_frames: u64,
    /// Snapshots received (1 on the first connect, then one per reconnect).
    pub snapshots: u64,
    /// The last `ping` round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Where a row of another tab asked the Faults form to point: proxy (or `@udp`,
    /// `@http`) and scope (`peer 10.0.0.7:5353`, `conn 12`).
    pub fault_aim: Option<(String, String)>,
    /// Bumped by every action: what `PartialEq` compares.
    pub rev: u64,
}

impl Lab {
    /// Applies one action.
    pub fn apply(&mut self, action: LabAction) {
        self.rev += 1;
        match action {
            LabAction::Conn(c) => {
                if c != ConnStatus::Connected {
                    self.rtt_ms = None;
                }
                self.conn = c;
            }
            LabAction::Rtt(ms) => self.rtt_ms = Some(ms),
            LabAction::Hello(h) => self.hello = Some(Rc::new(*h)),
            LabAction::Snapshot {
                state,
                resumed_from,
            } => {
                self.snapshots += 1;
                if self.snapshots > 1 {
                    let text = match resumed_from {
                        Some(seq) => format!("Reconnected; resumed after event {seq}."),
                        None => "Reconnected; the timeline restarted from the server's backlog."
                            .to_owned(),
                    };
                    self.notice("info", text);
                }
                self.set_state(*state);
            }
            LabAction::State(s) => self.set_state(*s),
            LabAction::Pool(p) => self.set_pool(*p),
            LabAction::Sent { id, form, what } => {
                Rc::make_mut(&mut self.pending).push((id, form));
                self.file(form, CmdResult::Pending(what));
            }
            LabAction::Ack { id, detail } => {
                if let Some(form) = self.answered(id) {
                    let text = detail.unwrap_or_else(|| "done".to_owned());
                    self.file(form, CmdResult::Ok(text));
                }
            }
            LabAction::Error { id, message } => match id.and_then(|id| self.answered(id)) {
                Some(form) => self.file(form, CmdResult::Err(message)),
                None => self.notice("error", message),
            },
            LabAction::Refused { form, message } => self.file(form, CmdResult::Err(message)),
            LabAction::Notice { level, text } => self.notice(level, text),
            LabAction::DismissNotice(id) => Rc::make_mut(&mut self.notices).retain(|n| n.id != id),
            LabAction::AimFault(aim) => self.fault_aim = aim,
            LabAction::BadFrame(why) => {
                self.bad_frames += 1;
                if self.bad_frames == 1 {
                    self.notice(
                        "warn",
                        format!("A frame from the server was not understood: {why}"),
                    );
                }
            }
        }
    }

    fn notice(&mut self, level: &'static str, text: String) {
        self.next_notice += 1;
        let notices = Rc::make_mut(&mut self.notices);
        notices.push_back(Notice {
            id: self.next_notice,
            level,
            text,
        });
        while notices.len() > NOTICES {
            notices.pop_front();
        }
    }

    fn set_state(&mut self, state: LabState) {
        if let Some(p) = &state.pool {
            // `state` carries the last run too; `pool` frames are fresher while it runs.
            let newer = self.pool.as_ref().is_none_or(|cur| {
                p.run > cur.run || (p.run == cur.run && p.elapsed_us >= cur.elapsed_us)
            });
            if newer {
                self.set_pool(p.clone());
            }
        }
        self.state = Rc::new(state);
    }

    fn set_pool(&mut self, p: PoolStatus) {
        let same_run = self.pool.as_ref().is_some_and(|cur| cur.run == p.run);
        let series = Rc::make_mut(&mut self.pool_series);
        if !same_run {
            series.clear();
        }
        if series
            .last()
            .is_none_or(|last| p.elapsed_us > last.elapsed_us)
        {
            series.push(PoolPoint {
                elapsed_us: p.elapsed_us,
                in_use: p.in_use,
                waiting: p.waiting,
                idle: p.idle,
            });
            if series.len() > POOL_POINTS {
                // Keep the whole run in view: drop every other point.
                let kept: Vec<PoolPoint> = series.iter().step_by(2).copied().collect();
                *series = kept;
            }
        }
        self.pool = Some(Rc::new(p));
    }

    /// The address a service listens on, from `hello` (`None` until it came).
    pub fn service_addr(&self, name: &str) -> Option<&str> {
        self.hello
            .as_ref()?
            .services
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.addr.as_str())
    }

    /// The relay mode of a service (`broadcast`, `echo`, `sink`), from `hello`.
    pub fn service_mode(&self, name: &str) -> Option<&str> {
        self.hello
            .as_ref()?
            .services
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.mode.as_deref())
    }

    /// The result shown next to `form`.
    pub fn result(&self, form: &str) -> Option<&CmdResult> {
        self.results
            .iter()
            .find(|(f, _)| *f == form)
            .map(|(_, r)| r)
    }

    /// Files `result` as `form`'s latest.
    fn file(&mut self, form: &'static str, result: CmdResult) {
        let results = Rc::make_mut(&mut self.results);
        match results.iter_mut().find(|(f, _)| *f == form) {
            Some((_, r)) => *r = result,
            None => results.push((form, result)),
        }
    }

    /// The form that sent command `id`, no longer pending.
    fn answered(&mut self, id: u64) -> Option<&'static str> {
        let pending = Rc::make_mut(&mut self.pending);
        let at = pending.iter().position(|(i, _)| *i == id)?;
        Some(pending.remove(at).1)
    }
}

impl PartialEq for Lab {
    fn eq(&self, other: &Self) -> bool {
        self.rev == other.rev
    }
}

impl Reducible for Lab {
    type Action = LabAction;

    fn reduce(self: Rc<Self>, action: LabAction) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::ServiceInfo;

    #[test]
    fn command_results_land_on_their_form() {
        let mut lab = Lab::default();
        lab.apply(LabAction::Sent {
            id: 1,
            form: "udp",
            what: "sending".into(),
        });
        assert!(matches!(lab.result("udp"), Some(CmdResult::Pending(_))));
        lab.apply(LabAction::Ack {
            id: 1,
            detail: Some("sent 3 bytes".into()),
        });
        assert_eq!(
            lab.result("udp"),
            Some(&CmdResult::Ok("sent 3 bytes".into()))
        );
        lab.apply(LabAction::Sent {
            id: 2,
            form: "tcp",
            what: "x".into(),
        });
        lab.apply(LabAction::Error {
            id: Some(2),
            message: "no such connection".into(),
        });
        assert_eq!(
            lab.result("tcp"),
            Some(&CmdResult::Err("no such connection".into()))
        );
        assert!(lab.pending.is_empty());
        // An error for no command of ours becomes a notice.
        lab.apply(LabAction::Error {
            id: None,
            message: "bad frame".into(),
        });
        assert_eq!(lab.notices.len(), 1);
        let id = lab.notices[0].id;
        lab.apply(LabAction::DismissNotice(id));
        assert!(lab.notices.is_empty());
    }

    #[test]
    fn pool_series_restart_with_each_run() {
        let mut lab = Lab::default();
        for i in 0..5 {
            lab.apply(LabAction::Pool(Box::new(PoolStatus {
                run: 1,
                elapsed_us: i * 200_000,
                in_use: i as u32,
                ..Default::default()
            })));
        }
        assert_eq!(lab.pool_series.len(), 5);
        // A state frame with an older picture of the same run does not go back in time.
        lab.apply(LabAction::State(Box::new(LabState {
            pool: Some(PoolStatus {
                run: 1,
                elapsed_us: 100,
                ..Default::default()
            }),
            ..Default::default()
        })));
        assert_eq!(lab.pool.as_ref().unwrap().elapsed_us, 800_000);
        lab.apply(LabAction::Pool(Box::new(PoolStatus {
            run: 2,
            ..Default::default()
        })));
        assert_eq!(lab.pool_series.len(), 1);
        for i in 1..=(POOL_POINTS as u64 + 1) {
            lab.apply(LabAction::Pool(Box::new(PoolStatus {
                run: 2,
                elapsed_us: i,
                ..Default::default()
            })));
        }
        assert!(lab.pool_series.len() <= POOL_POINTS);
        assert_eq!(lab.pool_series[0].elapsed_us, 0);
    }

    #[test]
    fn services_come_from_hello_and_reconnects_are_told() {
        let mut lab = Lab::default();
        assert_eq!(lab.service_addr("udp"), None);
        lab.apply(LabAction::Hello(Box::new(Hello {
            services: vec![ServiceInfo {
                name: "udp".into(),
                addr: "127.0.0.1:1339".into(),
                mode: Some("echo".into()),
            }],
            ..Default::default()
        })));
        assert_eq!(lab.service_addr("udp"), Some("127.0.0.1:1339"));
        assert_eq!(lab.service_mode("udp"), Some("echo"));
        let snap = || LabAction::Snapshot {
            state: Box::default(),
            resumed_from: Some(9),
        };
        lab.apply(snap());
        assert!(lab.notices.is_empty());
        lab.apply(snap());
        assert_eq!(lab.notices[0].text, "Reconnected; resumed after event 9.");
    }
}

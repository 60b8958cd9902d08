//! The push channel: one WebSocket to `/ws` on the page's own host, reconnecting with
//! backoff and resuming with `?since=<last seq>`, whose frames are parsed as they come
//! and handed over in one batch per animation frame.
//!
//! Batching: event batches queue up and one flush per `requestAnimationFrame` hands them
//! to the page. A background tab gets no animation frames, so a 100 ms timer flushes too
//! (whichever fires first wins), and a queue past [`FLUSH_NOW_EVENTS`] events is flushed
//! at once, so memory stays bounded whatever the browser throttles. A snapshot is handed
//! over on the next animation frame (its parse took the task it came in). The other frames
//! (hello, state, pool figures, acks) are rare and flush at once, in order.
//!
//! Pacing: each flush is timed, from the hand-over to the end of the render and effects it
//! caused, and a costly one holds the next back for [`flush_gap_ms`] (twice its cost).
//! Under a flood the page then applies bigger batches a few times less often, and the
//! main thread keeps room for input, layout and paint instead of being busy every frame.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};
use wirelab_shared::encode::command_json;
use wirelab_shared::json;
use wirelab_shared::{Command, CommandKind, ServerMsg};
use yew::Callback;

use crate::link::{ConnStatus, backoff_ms, flush_gap_ms, ws_url};
use crate::services::browser;

/// Queued events past which the queue is flushed without waiting for a frame.
pub const FLUSH_NOW_EVENTS: usize = 20_000;
/// The fallback flush timer, for tabs without animation frames.
const FLUSH_TIMER_MS: i32 = 100;

/// Where the socket reports.
pub struct Handlers {
    pub on_status: Callback<ConnStatus>,
    /// Frames since the last flush, in order.
    pub on_frames: Callback<Vec<ServerMsg>>,
    /// A frame that did not parse, and why.
    pub on_bad_frame: Callback<String>,
    /// The server closed the socket with a code and reason worth telling the user.
    pub on_closed: Callback<String>,
    /// Round-trip time of the last `ping`, in milliseconds.
    pub on_rtt: Callback<f64>,
}

/// How often the page measures the round trip to the lab.
const PING_EVERY_MS: u32 = 5_000;

/// How many flushes ran and what they cost (ms, from the hand-over to the end of the
/// render), published for the benchmark as `window.__wirelabFlushes`:
/// `[count, total_ms, max_ms]`.
#[derive(Default)]
struct FlushStats {
    count: u32,
    total_ms: f64,
    max_ms: f64,
}

impl FlushStats {
    fn add(&mut self, ms: f64) {
        self.count += 1;
        self.total_ms += ms;
        self.max_ms = self.max_ms.max(ms);
    }

    fn publish(&self) {
        if let Some(w) = web_sys::window() {
            let v = js_sys::Array::of3(
                &f64::from(self.count).into(),
                &self.total_ms.into(),
                &self.max_ms.into(),
            );
            let _ = js_sys::Reflect::set(&w, &"__wirelabFlushes".into(), &v);
        }
    }
}

/// A handle on the push channel; clones share one socket.
#[derive(Clone)]
pub struct Socket(Rc<RefCell<Inner>>);

impl PartialEq for Socket {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

struct Inner {
    handlers: Handlers,
    ws: Option<WebSocket>,
    /// The current socket's callbacks, kept alive while it lives.
    callbacks: Option<WsCallbacks>,
    /// Failed attempts since the last open, for the backoff.
    attempt: u32,
    /// Whether the current socket ever opened.
    opened: bool,
    /// Whether the user was told that the socket cannot open at all.
    told_unreachable: bool,
    /// The highest `seq` seen, to resume from.
    last_seq: Option<u64>,
    queue: Vec<ServerMsg>,
    queued_events: usize,
    flush_scheduled: bool,
    /// The pending flush's animation frame and timers, cancelled when a flush runs.
    flush_raf: Option<i32>,
    flush_timer: Option<i32>,
    /// No event flush before this (`Date.now()` ms): the pacing, see the module doc.
    next_flush_at: f64,
    /// What the flushes cost so far.
    flushes: FlushStats,
    /// One closure for every flush, one that arms a flush after the pacing's pause, and
    /// one for every retry, made once (a closure must not be dropped while it runs, and
    /// these run from timers).
    flush_fn: Option<Closure<dyn FnMut()>>,
    pace_fn: Option<Closure<dyn FnMut()>>,
    retry_fn: Option<Closure<dyn FnMut()>>,
    retry_timer: Option<i32>,
    next_id: u64,
    token: Option<String>,
    /// The last ping: its id and when it went.
    ping: Option<(u64, f64)>,
    /// Sends a ping now and then while open.
    pinger: Option<gloo_timers::callback::Interval>,
}

struct WsCallbacks {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// A socket that reports to `handlers`; [`Socket::connect`] opens it.
    pub fn new(handlers: Handlers) -> Socket {
        let inner = Rc::new(RefCell::new(Inner {
            handlers,
            ws: None,
            callbacks: None,
            attempt: 0,
            opened: false,
            told_unreachable: false,
            last_seq: None,
            queue: Vec::new(),
            queued_events: 0,
            flush_scheduled: false,
            flush_raf: None,
            flush_timer: None,
            next_flush_at: 0.0,
            flushes: FlushStats::default(),
            flush_fn: None,
            pace_fn: None,
            retry_fn: None,
            retry_timer: None,
            next_id: 0,
            token: browser::page_token(),
            ping: None,
            pinger: None,
        }));
        let weak = Rc::downgrade(&inner);
        let flush_fn = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = weak.upgrade() {
                flush(&rc);
            }
        });
        let weak = Rc::downgrade(&inner);
        let pace_fn = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = weak.upgrade() {
                rc.borrow_mut().flush_timer = None;
                arm_flush(&rc);
            }
        });
        let weak = Rc::downgrade(&inner);
        let retry_fn = Closure::<dyn FnMut()>::new(move || {
            if let Some(rc) = weak.upgrade() {
                rc.borrow_mut().retry_timer = None;
                connect(&rc);
            }
        });
        let weak = Rc::downgrade(&inner);
        let pinger = gloo_timers::callback::Interval::new(PING_EVERY_MS, move || {
            if let Some(rc) = weak.upgrade() {
                let socket = Socket(rc);
                if let Ok(id) = socket.send(CommandKind::Ping) {
                    socket.0.borrow_mut().ping = Some((id, browser::now_ms()));
                }
            }
        });
        {
            let mut i = inner.borrow_mut();
            i.flush_fn = Some(flush_fn);
            i.pace_fn = Some(pace_fn);
            i.retry_fn = Some(retry_fn);
            i.pinger = Some(pinger);
        }
        Socket(inner)
    }

    /// Opens the socket (and keeps it open from then on).
    pub fn connect(&self) {
        connect(&self.0);
    }

    /// Closes the socket for good (the page is going away).
    pub fn stop(&self) {
        let mut i = self.0.borrow_mut();
        if let (Some(t), Some(w)) = (i.retry_timer.take(), web_sys::window()) {
            w.clear_timeout_with_handle(t);
        }
        if let Some(ws) = i.ws.take() {
            detach(&ws);
            let _ = ws.close();
        }
    }

    /// Sends a command; returns its id, or why it could not go.
    pub fn send(&self, kind: CommandKind) -> Result<u64, String> {
        let mut i = self.0.borrow_mut();
        let open =
            i.ws.as_ref()
                .is_some_and(|ws| ws.ready_state() == WebSocket::OPEN);
        if !open {
            return Err("Not connected to the lab: nothing was sent.".to_owned());
        }
        i.next_id += 1;
        let id = i.next_id;
        let json = command_json(&Command { id, kind });
        i.ws.as_ref()
            .expect("checked open above")
            .send_with_str(&json)
            .map_err(|e| format!("The browser refused to send: {e:?}"))?;
        Ok(id)
    }

    /// The page's token, for API calls.
    pub fn token(&self) -> Option<String> {
        self.0.borrow().token.clone()
    }
}

fn connect(this: &Rc<RefCell<Inner>>) {
    let (url, on_status) = {
        let i = this.borrow();
        let loc = web_sys::window().map(|w| w.location());
        let protocol = loc
            .as_ref()
            .and_then(|l| l.protocol().ok())
            .unwrap_or_default();
        let host = loc.as_ref().and_then(|l| l.host().ok()).unwrap_or_default();
        let url = ws_url(&protocol, &host, i.last_seq, i.token.as_deref());
        (url, i.handlers.on_status.clone())
    };
    on_status.emit(ConnStatus::Connecting);
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(_) => return schedule_retry(this),
    };
    let weak = Rc::downgrade(this);
    let open = Closure::<dyn FnMut()>::new({
        let weak = weak.clone();
        move || on_open(&weak)
    });
    let message = Closure::<dyn FnMut(MessageEvent)>::new({
        let weak = weak.clone();
        move |e: MessageEvent| on_message(&weak, &e)
    });
    let close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| on_close(&weak, &e));
    ws.set_onopen(Some(open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(close.as_ref().unchecked_ref()));
    let mut i = this.borrow_mut();
    i.opened = false;
    if let Some(old) = i.ws.take() {
        detach(&old);
        let _ = old.close();
    }
    i.ws = Some(ws);
    // The old socket's callbacks are dropped here: they are not running (this runs from
    // a timer or from start-up).
    i.callbacks = Some(WsCallbacks {
        _open: open,
        _message: message,
        _close: close,
    });
}

fn detach(ws: &WebSocket) {
    ws.set_onopen(None);
    ws.set_onmessage(None);
    ws.set_onclose(None);
}

fn on_open(weak: &Weak<RefCell<Inner>>) {
    let Some(rc) = weak.upgrade() else { return };
    let on_status = {
        let mut i = rc.borrow_mut();
        i.attempt = 0;
        i.opened = true;
        i.told_unreachable = false;
        i.handlers.on_status.clone()
    };
    on_status.emit(ConnStatus::Connected);
}

fn on_message(weak: &Weak<RefCell<Inner>>, e: &MessageEvent) {
    let Some(rc) = weak.upgrade() else { return };
    let Some(text) = e.data().as_string() else {
        let cb = rc.borrow().handlers.on_bad_frame.clone();
        cb.emit("a binary frame (the dashboard speaks JSON text)".to_owned());
        return;
    };
    match json::from_str::<ServerMsg>(&text) {
        Ok(ServerMsg::Pong { id, .. }) => {
            let (ping, on_rtt) = {
                let i = rc.borrow();
                (i.ping, i.handlers.on_rtt.clone())
            };
            if let Some((_, at)) = ping.filter(|(sent, _)| *sent == id) {
                on_rtt.emit(browser::now_ms() - at);
            }
        }
        Ok(msg) => {
            let when = {
                let mut i = rc.borrow_mut();
                match &msg {
                    ServerMsg::Events { events } => {
                        if let Some(last) = events.last() {
                            i.last_seq = Some(i.last_seq.unwrap_or(0).max(last.seq));
                        }
                        i.queued_events += events.len();
                    }
                    ServerMsg::Snapshot(s) => {
                        // Resumed or not, the server's history goes up to `last_seq` now.
                        i.last_seq = Some(s.last_seq).filter(|s| *s > 0);
                        i.queued_events += s.backlog.len();
                    }
                    _ => {}
                }
                // Event batches wait for their paced flush. A snapshot (up to 1,000 events,
                // ~150 KB) took this task to parse: it is applied and rendered in the next
                // frame's, so neither task is long. The rest (hello, state, pool, ack, ...)
                // come a few times a second and are handed over at once, with whatever
                // events queued before them.
                let when = match &msg {
                    _ if i.queued_events >= FLUSH_NOW_EVENTS => When::Now,
                    ServerMsg::Events { .. } => When::Paced,
                    ServerMsg::Snapshot(_) => When::NextFrame,
                    _ => When::Now,
                };
                i.queue.push(msg);
                when
            };
            match when {
                When::Now => flush(&rc),
                When::NextFrame => {
                    {
                        let mut i = rc.borrow_mut();
                        cancel_pending(&mut i);
                        i.flush_scheduled = true;
                    }
                    arm_flush(&rc);
                }
                When::Paced => schedule_flush(&rc),
            }
        }
        Err(err) => {
            let cb = rc.borrow().handlers.on_bad_frame.clone();
            cb.emit(err.to_string());
        }
    }
}

fn on_close(weak: &Weak<RefCell<Inner>>, e: &CloseEvent) {
    let Some(rc) = weak.upgrade() else { return };
    // Hand over what came before the close first.
    flush(&rc);
    let (on_closed, unreachable) = {
        let mut i = rc.borrow_mut();
        if let Some(ws) = i.ws.take() {
            detach(&ws);
        }
        // Three attempts in a row that never opened: say why it may be, once.
        let unreachable = !i.opened && i.attempt >= 2 && !i.told_unreachable;
        i.told_unreachable |= unreachable;
        (i.handlers.on_closed.clone(), unreachable)
    };
    if unreachable {
        on_closed.emit(
            "The push channel (/ws) does not open. Is the lab running? A lab on a public address \
             needs its token: open the URL it printed (…/?token=…)."
                .to_owned(),
        );
    }
    let code = e.code();
    let why = match code {
        wirelab_shared::CLOSE_TOO_SLOW => {
            Some("the lab closed this page's socket: it fell too far behind")
        }
        wirelab_shared::CLOSE_TOO_MANY_CLIENTS => {
            Some("the lab refused this page: too many WebSocket clients")
        }
        wirelab_shared::CLOSE_IDLE => Some("the lab closed an idle socket"),
        1008 => Some("the lab refused this page (policy: token or origin)"),
        _ => None,
    };
    if let Some(why) = why {
        let reason = e.reason();
        on_closed.emit(if reason.is_empty() {
            format!("{why} (close code {code})")
        } else {
            format!("{why} (close code {code}: {reason})")
        });
    }
    schedule_retry(&rc);
}

fn schedule_retry(this: &Rc<RefCell<Inner>>) {
    let (delay, on_status) = {
        let mut guard = this.borrow_mut();
        let i = &mut *guard;
        let delay = backoff_ms(i.attempt, js_sys::Math::random());
        i.attempt = i.attempt.saturating_add(1);
        if let Some(w) = web_sys::window() {
            if let Some(old) = i.retry_timer.take() {
                w.clear_timeout_with_handle(old);
            }
            if let Some(f) = i.retry_fn.as_ref() {
                i.retry_timer = w
                    .set_timeout_with_callback_and_timeout_and_arguments_0(
                        f.as_ref().unchecked_ref(),
                        delay as i32,
                    )
                    .ok();
            }
        }
        (delay, i.handlers.on_status.clone())
    };
    on_status.emit(ConnStatus::Reconnecting {
        at_ms: browser::now_ms() + delay,
    });
}

/// A flush of the queued events: on the next animation frame (or the fallback timer), once
/// the pacing's pause since the last one is over.
fn schedule_flush(this: &Rc<RefCell<Inner>>) {
    let wait = {
        let mut i = this.borrow_mut();
        if i.flush_scheduled {
            return;
        }
        i.flush_scheduled = true;
        i.next_flush_at - browser::now_ms()
    };
    if wait < 1.0 {
        return arm_flush(this);
    }
    let mut guard = this.borrow_mut();
    let i = &mut *guard;
    if let (Some(w), Some(f)) = (web_sys::window(), i.pace_fn.as_ref()) {
        i.flush_timer = w
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                f.as_ref().unchecked_ref(),
                wait.ceil() as i32,
            )
            .ok();
    }
}

/// Flushes on the next animation frame, or after [`FLUSH_TIMER_MS`] without one.
fn arm_flush(this: &Rc<RefCell<Inner>>) {
    let mut guard = this.borrow_mut();
    let i = &mut *guard;
    if let (Some(w), Some(f)) = (web_sys::window(), i.flush_fn.as_ref()) {
        let f = f.as_ref().unchecked_ref();
        i.flush_raf = w.request_animation_frame(f).ok();
        i.flush_timer = w
            .set_timeout_with_callback_and_timeout_and_arguments_0(f, FLUSH_TIMER_MS)
            .ok();
    }
}

/// When a frame's contents are handed over.
enum When {
    /// In this task.
    Now,
    /// On the next animation frame.
    NextFrame,
    /// On an animation frame after the pacing's pause.
    Paced,
}

/// Cancels the pending flush's animation frame and timer.
fn cancel_pending(i: &mut Inner) {
    if let Some(w) = web_sys::window() {
        if let Some(raf) = i.flush_raf.take() {
            let _ = w.cancel_animation_frame(raf);
        }
        if let Some(timer) = i.flush_timer.take() {
            w.clear_timeout_with_handle(timer);
        }
    }
}

fn flush(this: &Rc<RefCell<Inner>>) {
    let (frames, on_frames) = {
        let mut i = this.borrow_mut();
        cancel_pending(&mut i);
        i.flush_scheduled = false;
        i.queued_events = 0;
        (std::mem::take(&mut i.queue), i.handlers.on_frames.clone())
    };
    if frames.is_empty() {
        return;
    }
    let started = browser::now_ms();
    on_frames.emit(frames);
    // Yew renders in a microtask queued by the hand-over: this one runs after it (and its
    // effects), so it sees what the whole flush cost.
    let weak = Rc::downgrade(this);
    wasm_bindgen_futures::spawn_local(async move {
        if let Some(rc) = weak.upgrade() {
            let now = browser::now_ms();
            let cost = now - started;
            let mut i = rc.borrow_mut();
            i.next_flush_at = now + flush_gap_ms(cost);
            i.flushes.add(cost);
            i.flushes.publish();
        }
    });
}

//! The app: owns both stores and the socket, provides them as contexts, and lays out
//! the header, the rail, the selected panel and the timeline.

use yew::functional::{Hook, HookContext};
use yew::prelude::*;

use crate::components::charts_strip::charts_strip;
use crate::components::header::{header, use_countdown};
use crate::components::http_panel::use_http_panel;
use crate::components::notices::notices;
use crate::components::pool_panel::use_pool_panel;
use crate::components::proxies_panel::use_proxies_panel;
use crate::components::rail::{Tab, rail};
use crate::components::timeline_pane::TimelinePane;
use crate::components::udp_panel::use_udp_panel;
use crate::components::ws_panel::use_ws_panel;
use crate::ctx::{Commander, LabAndCommander, TimelineCtx};
use crate::lab::{Lab, LabAction};
use crate::route::route;
use crate::services::browser;
use crate::services::socket::{Handlers, Socket};
use crate::timeline::{DEFAULT_CAP, Timeline, TimelineAction};

/// The ring's bound: `?cap=N` in the page URL, else `localStorage["wirelab.cap"]`,
/// else 50,000.
fn ring_cap() -> usize {
    crate::link::query_param(&browser::page_search(), "cap")
        .and_then(|c| c.parse().ok())
        .or_else(|| browser::stored_usize("wirelab.cap"))
        .unwrap_or(DEFAULT_CAP)
}

#[function_component]
pub fn App() -> Html {
    let timeline = use_reducer(|| Timeline::new(ring_cap()));
    let lab = use_reducer(Lab::default);
    use_countdown(&lab);

    let socket = {
        let tl = timeline.dispatcher();
        let lab = lab.dispatcher();
        use_memo((), move |_| {
            let (lab1, lab2, lab3, lab4) = (lab.clone(), lab.clone(), lab.clone(), lab.clone());
            Socket::new(Handlers {
                on_status: Callback::from(move |s| lab1.dispatch(LabAction::Conn(s))),
                on_frames: Callback::from(move |frames| {
                    let routed = route(frames);
                    if !routed.timeline.is_empty() {
                        tl.dispatch(TimelineAction::Apply(routed.timeline));
                    }
                    for action in routed.lab {
                        lab.dispatch(action);
                    }
                }),
                on_bad_frame: Callback::from(move |why| lab2.dispatch(LabAction::BadFrame(why))),
                on_rtt: Callback::from(move |ms| lab4.dispatch(LabAction::Rtt(ms))),
                on_closed: Callback::from(move |text| {
                    lab3.dispatch(LabAction::Notice {
                        level: "warn",
                        text,
                    })
                }),
            })
        })
    };
    {
        let socket = (*socket).clone();
        use_effect_with((), move |_| {
            socket.connect();
            move || socket.stop()
        });
    }
    // The tab lives in the URL's hash, so a reload (or a shared link) keeps it.
    let tab = use_state_eq(|| {
        web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .and_then(|h| Tab::parse(h.trim_start_matches('#')))
            .unwrap_or(Tab::Timeline)
    });
    let onselect = {
        let tab = tab.clone();
        Callback::from(move |t: Tab| {
            if let Some(w) = web_sys::window() {
                let _ = w.location().set_hash(t.key());
            }
            tab.set(t)
        })
    };
    let lab_and_commander = LabAndCommander {
        lab: lab.clone(),
        cmd: Commander {
            socket: (*socket).clone(),
            lab: lab.dispatcher(),
            go: onselect.clone(),
        },
    };

    html! {
        <ContextProvider<TimelineCtx> context={timeline.clone()}>
        <ContextProvider<LabAndCommander> context={lab_and_commander}>
            <div class="app">
                { header(&lab, &timeline) }
                <div class="body">
                    { rail(&lab, *tab, &onselect) }
                    <main class="main" role="tabpanel" aria-labelledby={format!("tab-{}", tab.key())}>
                        { match *tab {
                            Tab::Timeline => charts_strip(&timeline),
                            // Keyed by its tab: another tab is another component, with
                            // its own hooks.
                            tab => html! { <TabPanel key={tab.key()} {tab} /> },
                        } }
                        <TimelinePane />
                    </main>
                </div>
                { notices(&lab) }
            </div>
        </ContextProvider<LabAndCommander>>
        </ContextProvider<TimelineCtx>>
    }
}

#[derive(Properties, PartialEq)]
struct TabPanelProps {
    tab: Tab,
}

/// The panel of a tab other than the timeline: one component for the five (a component's
/// own code was some 200 bytes of the gzipped wasm each), each panel being a hook that
/// draws it (`use_proxies_panel`, ...). App keys it by its tab, so one instance only ever
/// runs the hooks of one panel.
#[function_component]
fn TabPanel(props: &TabPanelProps) -> Html {
    use_tab_panel(props.tab)
}

/// Runs `tab`'s panel hook. A hand-written [`Hook`]: `#[hook]` refuses hooks in a `match`
/// arm, which is safe here since [`TabPanel`] never changes tabs.
fn use_tab_panel(tab: Tab) -> impl Hook<Output = Html> {
    struct TabPanelHook(Tab);
    impl Hook for TabPanelHook {
        type Output = Html;

        fn run(self, ctx: &mut HookContext) -> Html {
            match self.0 {
                Tab::Tcp => use_proxies_panel().run(ctx),
                Tab::Udp => use_udp_panel().run(ctx),
                Tab::Http => use_http_panel().run(ctx),
                Tab::Ws => use_ws_panel().run(ctx),
                Tab::Pool => use_pool_panel().run(ctx),
                Tab::Timeline => Html::default(),
            }
        }
    }
    TabPanelHook(tab)
}

//! The unified timeline: filter bar, the virtualized list, and the detail pane of the
//! selected row.

use yew::prelude::*;

use crate::components::timeline_list::TimelineList;

#[function_component]
pub fn TimelinePane() -> Html {
    let selected = use_state_eq(|| None::<u64>);
    let follow = use_state_eq(|| true);
    let onselect = {
        let selected = selected.clone();
        Callback::from(move |s: Option<u64>| selected.set(s))
    };
    let onfollow = {
        let follow = follow.clone();
        Callback::from(move |f: bool| follow.set(f))
    };
    html! {
        <section class="timeline" aria-label="timeline">
            <TimelineList selected={*selected} onselect={onselect} follow={*follow} onfollow={onfollow} />
        </section>
    }
}

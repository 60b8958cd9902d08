//! One timeline row. Props compare the row by pointer, so a place whose row did not change
//! is left alone while others arrive. Payloads are text nodes, never markup.

use std::rc::Rc;

use wirelab_shared::Direction;
use yew::prelude::*;

use crate::fmt;
use crate::row::Row;
use crate::services::browser;

#[derive(Properties)]
pub struct RowProps {
    pub row: Rc<Row>,
    pub selected: bool,
    pub onselect: Callback<u64>,
}

impl PartialEq for RowProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.row, &other.row)
            && self.selected == other.selected
            && self.onselect == other.onselect
    }
}

#[function_component]
pub fn RowView(props: &RowProps) -> Html {
    let r = &props.row;
    let tz = browser::tz_offset_min();
    let onclick = {
        let (cb, seq) = (props.onselect.clone(), r.seq);
        Callback::from(move |_| cb.emit(seq))
    };
    let (dir_class, dir) = match r.dir {
        Some(Direction::In) => ("c-dir in", "in"),
        Some(Direction::Out) => ("c-dir out", "out"),
        None => ("c-dir", ""),
    };
    html! {
        <div class={classes!("row", props.selected.then_some("sel"))}
            data-seq={r.seq.to_string()} role="row" aria-selected={props.selected.to_string()}
            onclick={onclick}>
            <span class="c-time" title={fmt::date_time(r.ts_us, tz)}>{ fmt::clock(r.ts_us, tz) }</span>
            <span class={classes!("c-proto", r.proto.as_str())}>{ r.proto.as_str() }</span>
            <span class={dir_class}>{ dir }</span>
            <span class="c-peer" title={r.peer.clone()}>{ &r.peer }</span>
            <span class="c-size">{ if r.size > 0 { fmt::size(r.size) } else { String::new() } }</span>
            <span class="c-prev"><span class="kind">{ r.kind }</span>{ &r.preview }</span>
        </div>
    }
}

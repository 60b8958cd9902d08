//! The panels' data tables, and static rich text, each built by one function rather than
//! written out element by element: `html!` makes code for every element it builds (a few
//! hundred bytes of wasm for a table heading cell), where a table's columns here are data.

use yew::prelude::*;

use crate::fmt;

/// A column of a data table.
pub struct Col {
    /// The heading.
    pub label: &'static str,
    /// It holds figures: right-aligned, with tabular digits (`class="num"`).
    pub num: bool,
    /// What the heading means, as a tooltip (empty: none).
    pub title: &'static str,
}

impl Col {
    /// A column of text.
    pub const fn text(label: &'static str) -> Col {
        Col {
            label,
            num: false,
            title: "",
        }
    }

    /// A column of figures.
    pub const fn num(label: &'static str) -> Col {
        Col {
            label,
            num: true,
            title: "",
        }
    }

    /// The same column with a tooltip on its heading.
    pub const fn title(self, title: &'static str) -> Col {
        Col { title, ..self }
    }
}

/// A data table in its scrolling wrapper (`tablewrap`, and `wrap`'s classes): a heading
/// row from `cols`, then `rows`; with no rows, one row across the table saying `empty`.
pub fn data_table(
    wrap: &'static str,
    cols: &'static [Col],
    rows: Html,
    empty: Option<String>,
) -> Html {
    html! {
        <div class={classes!("tablewrap", wrap)}>
            <table class="data">
                <thead><tr>
                    { for cols.iter().map(|c| html! {
                        <th class={c.num.then_some("num")} title={(!c.title.is_empty()).then_some(c.title)}>
                            { c.label }
                        </th>
                    }) }
                </tr></thead>
                <tbody>
                    { rows }
                    if let Some(empty) = empty {
                        <tr><td colspan={cols.len().to_string()} class="empty">{ empty }</td></tr>
                    }
                </tbody>
            </table>
        </div>
    }
}

/// Static text with markup (`<b>`, `<code>`) as one string, set as HTML. Only for text
/// written in this crate: never for anything that came from the network.
pub fn rich(html: &'static str) -> Html {
    Html::from_html_unchecked(AttrValue::Static(html))
}

/// A figure in a `.figs` row: the value (its element's id for the tests) over its label.
pub fn fig(id: &'static str, v: String, label: &'static str) -> Html {
    html! {
        <div class="fig"><span class="v" id={id}>{ v }</span><span class="l">{ label }</span></div>
    }
}

/// A table's age cell: how long ago `since_us` was, at `now_us`.
pub fn age_cell(now_us: u64, since_us: u64) -> Html {
    html! { <td>{ fmt::age(now_us, since_us) }</td> }
}

/// A table's number cell: `text` in a `td.num`.
pub fn num_cell(text: String) -> Html {
    html! { <td class="num">{ text }</td> }
}

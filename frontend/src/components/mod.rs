//! The components, one per file. They read the stores from context and send commands
//! through the `Commander`; the logic they show lives in the plain modules.

pub mod app;
pub mod header;
pub mod rail;
pub mod row_view;
pub mod timeline_list;
pub mod timeline_pane;

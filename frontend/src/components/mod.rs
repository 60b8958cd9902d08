//! The components, one per file. They read the stores from context and send commands
//! through the `Commander`; the logic they show lives in the plain modules.

pub mod app;
pub mod charts_strip;
pub mod chat_box;
pub mod detail;
pub mod faults_panel;
pub mod filter_bar;
pub mod forms;
pub mod header;
pub mod http_panel;
pub mod http_requests;
pub mod notices;
pub mod pool_panel;
pub mod proxies_panel;
pub mod rail;
pub mod row_view;
pub mod send_form;
pub mod sparkline;
pub mod status_line;
pub mod table;
pub mod tcp_panel;
pub mod timeline_actions;
pub mod timeline_list;
pub mod timeline_pane;
pub mod try_it;
pub mod udp_panel;
pub mod ws_panel;
pub mod ws_service_panel;

//! Scap events: the schema of every event type ([`table`]), borrowed views
//! over raw event records ([`view`]) and sysdig-style rendering of their
//! parameters ([`render`]).

pub mod codes;
pub mod merge;
pub mod render;
mod syscall_map_data;
pub mod table;
mod table_data;
pub mod view;

pub use table::{event_info, Direction, EventInfo, ParamInfo, ParamType};
pub use view::{EventView, Param, ViewError};

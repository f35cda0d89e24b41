//! The console's page, script and style, built into the binary: nothing
//! is fetched from anywhere else, so it works air-gapped.

pub const INDEX_HTML: &str = include_str!("static/index.html");
pub const APP_JS: &str = include_str!("static/app.js");
pub const APP_CSS: &str = include_str!("static/app.css");

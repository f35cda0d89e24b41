//! Copies a capture through Peregrine's reader and writer.
//!
//! Usage: scap_copy IN OUT

use peregrine_engine::scap::{copy_capture, Capture};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: scap_copy IN OUT".into());
    };
    let mut cap = Capture::open(&input)?;
    let file = std::io::BufWriter::new(std::fs::File::create(&output)?);
    copy_capture(&mut cap, file)?;
    Ok(())
}

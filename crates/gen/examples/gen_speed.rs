//! Times generation: `cargo run --release -p ps-gen --example gen_speed -- [events] [seed] [sources]`.
//! Writes the stream to a sink (or to the file named by `PS_GEN_OUT`) and
//! prints the shape and the rate.

use std::time::Instant;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("a number"));
    let events = args.next().unwrap_or(200_000);
    let seed = args.next().unwrap_or(42);
    let sources = args.next().unwrap_or(3) as u32;
    let cfg = ps_gen::GenConfig {
        events,
        seed,
        sources,
    };
    let start = Instant::now();
    let shape = match std::env::var_os("PS_GEN_OUT") {
        Some(path) => ps_gen::generate(&cfg, std::fs::File::create(path).expect("create output"))
            .expect("write output"),
        None => ps_gen::generate(&cfg, std::io::sink()).expect("sink never fails"),
    };
    let secs = start.elapsed().as_secs_f64();
    println!("{shape}");
    println!(
        "generated {events} events in {secs:.3}s: {:.0} events/s, {:.1} MiB/s",
        events as f64 / secs,
        shape.bytes as f64 / secs / (1024.0 * 1024.0)
    );
}

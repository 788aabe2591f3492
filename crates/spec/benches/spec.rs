//! Micro-benchmarks of the per-event schema work: the naming rule, flattening,
//! and event parsing. `cargo bench -p ps-spec --bench spec`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ps_spec::flatten::{flatten_object, FlattenStats};
use ps_spec::naming::snake_case;
use ps_spec::{parse_event_str, Arrival};
use std::hint::black_box;

const NAMES: [&str; 8] = [
    "Order Completed",
    "accountType",
    "productID",
    "context_page_url",
    "iOS Push Token",
    "$revenue",
    "already_snake_case",
    "Über Event",
];

const EVENT: &str = r#"{"type":"track","event":"Order Completed","messageId":"m1","userId":"u1","writeKey":"wk","timestamp":"2024-03-01T10:00:00.123Z","context":{"page":{"url":"https://shop.example/checkout","referrer":"https://google.com","title":"Checkout","path":"/checkout"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64)","ip":"10.1.2.3","library":{"name":"analytics.js","version":"2.11.1"},"campaign":{"name":"spring","source":"google","medium":"cpc"},"locale":"en-US"},"properties":{"order_id":"50314b8e9bcf000000000000","total":27.5,"revenue":25.0,"shipping":3,"tax":2,"coupon":"hasbros","currency":"USD","products":[{"product_id":"507f1f77bcf86cd799439011","sku":"45790-32","price":19,"quantity":1}],"isGift":false}}"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("spec");
    g.throughput(Throughput::Elements(NAMES.len() as u64));
    g.bench_function("snake_case x8", |b| {
        b.iter(|| {
            for n in NAMES {
                black_box(snake_case(black_box(n)));
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    let ev = parse_event_str(EVENT, &Arrival::default()).unwrap();
    g.bench_function("flatten context+properties", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(32);
            let mut stats = FlattenStats::default();
            flatten_object(ev.context_ref().unwrap(), "context", &mut out, &mut stats);
            flatten_object(ev.body_ref().unwrap(), "", &mut out, &mut stats);
            black_box(out.len())
        })
    });
    g.bench_function("parse_event_str", |b| {
        b.iter(|| {
            black_box(
                parse_event_str(black_box(EVENT), &Arrival::default())
                    .unwrap()
                    .timestamp,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

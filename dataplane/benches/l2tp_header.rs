//! Per-packet cost of the L2TP data header view (RFC 2661 §3.1), with and without the
//! optional L, S and O fields.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use xlns_dataplane::wire::l2tp::{HeaderRepr, Packet};

fn parse(c: &mut Criterion) {
    // Ver 2, no optional fields, PPP IPv4 frame header follows.
    let plain: [u8; 10] = [0x00, 0x02, 0x00, 0x05, 0x00, 0x0a, 0xff, 0x03, 0x00, 0x21];
    // L, S and O set: Length 20, Ns/Nr, Offset Size 2 with its pad.
    let full: [u8; 20] = [
        0x4a, 0x02, 0x00, 0x14, 0x00, 0x05, 0x00, 0x0a, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x00, 0xff, 0x03, 0x00, 0x21,
    ];
    let mut group = c.benchmark_group("l2tp_data_header");
    for (name, bytes) in [("plain", &plain[..]), ("l_s_o", &full[..])] {
        group.bench_function(format!("{name}/view"), |b| {
            b.iter(|| {
                let packet = Packet::new_checked(black_box(bytes)).ok()?;
                Some((
                    packet.tunnel_id(),
                    packet.session_id(),
                    packet.payload().len(),
                ))
            })
        });
        group.bench_function(format!("{name}/repr"), |b| {
            b.iter(|| {
                let packet = Packet::new_unchecked(black_box(bytes));
                HeaderRepr::parse(&packet).ok()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

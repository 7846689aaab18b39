//! Cost of parsing an ICCN carrying proxy LCP and proxy authentication AVPs
//! (RFC 2661 §6.8), in clear and with hidden proxy authentication AVPs (§4.3).

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use xlns_controlplane::l2tp::attr::{FramingMask, ProxyAuthenType, attr_type};
use xlns_controlplane::l2tp::{Avp, ControlMessage, ControlPacket, HidingPolicy, MessageType};

fn iccn() -> ControlPacket {
    let confreq = vec![0x01, 0x04, 0x05, 0xdc, 0x05, 0x06, 0x12, 0x34, 0x56, 0x78];
    let message = ControlMessage::new(MessageType::Iccn)
        .with(Avp::TxConnectSpeed(100_000_000))
        .with(Avp::FramingType(FramingMask(FramingMask::SYNC)))
        .with(Avp::InitialReceivedLcpConfReq(confreq.clone()))
        .with(Avp::LastSentLcpConfReq(confreq.clone()))
        .with(Avp::LastReceivedLcpConfReq(confreq))
        .with(Avp::ProxyAuthenType(ProxyAuthenType::Chap))
        .with(Avp::ProxyAuthenName(b"subscriber@isp.example".to_vec()))
        .with(Avp::ProxyAuthenChallenge(vec![0xa5; 16]))
        .with(Avp::ProxyAuthenId(1))
        .with(Avp::ProxyAuthenResponse(vec![0x5a; 16]))
        .with(Avp::RxConnectSpeed(20_000_000));
    ControlPacket {
        tunnel_id: 1,
        session_id: 2,
        ns: 3,
        nr: 4,
        body: xlns_controlplane::l2tp::ControlBody::Message(message),
    }
}

fn parse(c: &mut Criterion) {
    let packet = iccn();
    let clear = packet.emit(None).unwrap_or_default();
    let mut random = |rv: &mut [u8]| rv.fill(7);
    let mut policy = HidingPolicy {
        secret: b"tunnel secret",
        hide: &[
            attr_type::PROXY_AUTHEN_NAME,
            attr_type::PROXY_AUTHEN_CHALLENGE,
            attr_type::PROXY_AUTHEN_RESPONSE,
        ],
        random: &mut random,
    };
    let hidden = packet.emit(Some(&mut policy)).unwrap_or_default();
    let mut group = c.benchmark_group("l2tp_iccn");
    group.bench_function("parse_clear", |b| {
        b.iter(|| ControlPacket::parse(black_box(&clear), None).is_ok())
    });
    group.bench_function("parse_hidden", |b| {
        b.iter(|| ControlPacket::parse(black_box(&hidden), Some(b"tunnel secret")).is_ok())
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);

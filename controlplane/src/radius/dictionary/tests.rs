#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::radius::wire::{attr, ms};

const FREERADIUS_DICTIONARY: &str = "/usr/share/freeradius/dictionary";

#[test]
fn builtin_parses_and_matches_wire_constants() {
    let mut d = Dictionary::new();
    d.merge_str(BUILTIN, "builtin").unwrap();
    let b = Dictionary::builtin();
    assert_eq!(b.attribute_count(), d.attribute_count());
    for (name, code) in [
        ("User-Name", attr::USER_NAME),
        ("User-Password", attr::USER_PASSWORD),
        ("CHAP-Password", attr::CHAP_PASSWORD),
        ("NAS-IP-Address", attr::NAS_IP_ADDRESS),
        ("NAS-Port", attr::NAS_PORT),
        ("Service-Type", attr::SERVICE_TYPE),
        ("Framed-Protocol", attr::FRAMED_PROTOCOL),
        ("Framed-IP-Address", attr::FRAMED_IP_ADDRESS),
        ("Framed-IP-Netmask", attr::FRAMED_IP_NETMASK),
        ("Framed-MTU", attr::FRAMED_MTU),
        ("Reply-Message", attr::REPLY_MESSAGE),
        ("Framed-Route", attr::FRAMED_ROUTE),
        ("Class", attr::CLASS),
        ("Session-Timeout", attr::SESSION_TIMEOUT),
        ("Idle-Timeout", attr::IDLE_TIMEOUT),
        ("Called-Station-Id", attr::CALLED_STATION_ID),
        ("Calling-Station-Id", attr::CALLING_STATION_ID),
        ("NAS-Identifier", attr::NAS_IDENTIFIER),
        ("Acct-Status-Type", attr::ACCT_STATUS_TYPE),
        ("Acct-Session-Id", attr::ACCT_SESSION_ID),
        ("Acct-Input-Gigawords", attr::ACCT_INPUT_GIGAWORDS),
        ("CHAP-Challenge", attr::CHAP_CHALLENGE),
        ("NAS-Port-Type", attr::NAS_PORT_TYPE),
        ("Tunnel-Type", attr::TUNNEL_TYPE),
        ("Tunnel-Medium-Type", attr::TUNNEL_MEDIUM_TYPE),
        ("Tunnel-Client-Endpoint", attr::TUNNEL_CLIENT_ENDPOINT),
        ("Tunnel-Server-Endpoint", attr::TUNNEL_SERVER_ENDPOINT),
        ("Connect-Info", attr::CONNECT_INFO),
        ("Message-Authenticator", attr::MESSAGE_AUTHENTICATOR),
        ("Tunnel-Assignment-Id", attr::TUNNEL_ASSIGNMENT_ID),
        ("Acct-Interim-Interval", attr::ACCT_INTERIM_INTERVAL),
        ("Framed-Pool", attr::FRAMED_POOL),
        ("Tunnel-Client-Auth-Id", attr::TUNNEL_CLIENT_AUTH_ID),
        ("Tunnel-Server-Auth-Id", attr::TUNNEL_SERVER_AUTH_ID),
        ("Framed-IPv6-Prefix", attr::FRAMED_IPV6_PREFIX),
        ("Delegated-IPv6-Prefix", attr::DELEGATED_IPV6_PREFIX),
        ("Error-Cause", attr::ERROR_CAUSE),
    ] {
        let a = b.attribute(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((a.vendor, a.code()), (0, Some(u32::from(code))), "{name}");
        assert_eq!(b.by_code(0, code.into()).unwrap().name, name);
    }
    for (name, code) in [
        ("MS-CHAP-Challenge", ms::CHAP_CHALLENGE),
        ("MS-CHAP2-Response", ms::CHAP2_RESPONSE),
        ("MS-CHAP2-Success", ms::CHAP2_SUCCESS),
        ("MS-CHAP-Error", ms::CHAP_ERROR),
        ("MS-MPPE-Send-Key", ms::MPPE_SEND_KEY),
        ("MS-MPPE-Recv-Key", ms::MPPE_RECV_KEY),
        ("MS-Primary-DNS-Server", ms::PRIMARY_DNS_SERVER),
        ("MS-Secondary-DNS-Server", ms::SECONDARY_DNS_SERVER),
    ] {
        let a = b.attribute(name).unwrap();
        assert_eq!(
            (a.vendor, a.code()),
            (ms::VENDOR_ID, Some(u32::from(code))),
            "{name}"
        );
    }
    assert_eq!(b.vendor("microsoft").unwrap().id, 311);
    let tt = b.attribute("tunnel-type").unwrap();
    assert!(tt.has_tag);
    assert_eq!(tt.value("L2TP"), Some(3));
    assert_eq!(b.attribute("User-Password").unwrap().encrypt, 1);
    assert_eq!(
        b.attribute("MS-CHAP2-Response").unwrap().fixed_len,
        Some(50)
    );
    assert_eq!(
        b.attribute("NAS-Port-Type").unwrap().value_name(5),
        Some("Virtual")
    );
}

#[test]
fn encode_and_decode() {
    let d = Dictionary::builtin();
    let a = d.encode("NAS-Port-Type", "Virtual").unwrap();
    assert_eq!(a, Attribute::integer(attr::NAS_PORT_TYPE, 5));
    assert_eq!(
        d.decode(&a),
        vec![("NAS-Port-Type".into(), "Virtual".into())]
    );
    let a = d.encode("Framed-IP-Address", "192.0.2.7").unwrap();
    assert_eq!(a.value, [192, 0, 2, 7]);
    assert_eq!(d.decode(&a)[0].1, "192.0.2.7");
    let a = d.encode("Tunnel-Type:1", "L2TP").unwrap();
    assert_eq!(a.value, [1, 0, 0, 3]);
    assert_eq!(d.decode(&a), vec![("Tunnel-Type:1".into(), "L2TP".into())]);
    let a = d.encode("Tunnel-Client-Endpoint:1", "192.0.2.1").unwrap();
    assert_eq!(a.value, b"\x01192.0.2.1");
    assert_eq!(d.decode(&a)[0].0, "Tunnel-Client-Endpoint:1");
    let a = d.encode("MS-Primary-DNS-Server", "198.51.100.1").unwrap();
    assert_eq!(a, Attribute::vendor(311, 28, &[198, 51, 100, 1]));
    assert_eq!(
        d.decode(&a),
        vec![("MS-Primary-DNS-Server".into(), "198.51.100.1".into())]
    );
    let a = d
        .encode("Delegated-IPv6-Prefix", "2001:db8:100::/40")
        .unwrap();
    assert_eq!(a.value, [0, 40, 0x20, 0x01, 0x0d, 0xb8, 0x01]);
    assert_eq!(d.decode(&a)[0].1, "2001:db8:100::/40");
    assert_eq!(d.encode("Class", "0x0102ff").unwrap().value, [1, 2, 0xff]);
    assert!(d.encode("No-Such-Attribute", "1").is_err());
    assert!(d.encode("NAS-Port-Type", "Bogus").is_err());
    assert!(d.encode("Framed-IP-Address", "300.1.1.1").is_err());
    assert_eq!(
        d.decode(&Attribute::new(250, vec![1, 2])),
        vec![("Attr-250".into(), "0x0102".into())]
    );
    assert_eq!(
        d.decode(&Attribute::vendor(9, 1, b"x"))[0].0,
        "Vendor-9-Attr-1"
    );
    // A malformed prefix is shown as hex, never panics.
    assert_eq!(decode_ipv6_prefix(&[0, 129]), None);
    assert_eq!(decode_ipv6_prefix(&[0, 64, 1]), None);
}

#[test]
fn syntax_errors_name_file_and_line() {
    let mut d = Dictionary::new();
    let e = d
        .merge_str("ATTRIBUTE A 1 string\nBOGUS x\n", "t")
        .unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("t", 2));
    let e = d.merge_str("\n\nVALUE Nope X 1\n", "t").unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("Nope"));
    let e = d.merge_str("ATTRIBUTE B 2 float\n", "t").unwrap_err();
    assert!(e.message.contains("float"));
    let e = d.merge_str("END-VENDOR Foo\n", "t").unwrap_err();
    assert_eq!(e.line, 1);
    let e = d.merge_str("ATTRIBUTE A 9 string\n", "t").unwrap_err();
    assert!(e.message.contains("duplicate"));
    // The same definition twice is fine (FreeRADIUS' trees repeat some).
    d.merge_str("ATTRIBUTE A 1 string\n", "t").unwrap();
}

#[test]
fn vendors_tlvs_values_before_attributes_and_includes() {
    let dir = std::env::temp_dir().join(format!("xlns-dict-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("dictionary"),
        "$INCLUDE sub/dictionary.v\n$INCLUDE- dictionary.missing\nVALUE Late-Attr One 1\nATTRIBUTE Late-Attr 200 integer\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/dictionary.v"),
        "VENDOR Acme 4242 format=2,1\nVENDOR Wide 77 format=1,1,c\nBEGIN-VENDOR Acme\nATTRIBUTE Acme-Tlv 1 tlv\nBEGIN-TLV Acme-Tlv\nATTRIBUTE Acme-Child 2 ipaddr\nEND-TLV Acme-Tlv\nATTRIBUTE Acme-Ext 3.4 octets[8] # comment\nEND-VENDOR Acme\nATTRIBUTE Old-Style 5 string Wide\n",
    )
    .unwrap();
    let d = Dictionary::load(dir.join("dictionary")).unwrap();
    let acme = d.vendor("ACME").unwrap();
    assert_eq!((acme.id, acme.type_len, acme.length_len), (4242, 2, 1));
    assert!(d.vendor_by_id(77).unwrap().continuation);
    let child = d.attribute("acme-child").unwrap();
    assert_eq!((child.vendor, child.oid.clone()), (4242, vec![1, 2]));
    assert_eq!(d.attribute("Acme-Ext").unwrap().fixed_len, Some(8));
    assert_eq!(d.attribute("Old-Style").unwrap().vendor, 77);
    assert_eq!(d.attribute("Late-Attr").unwrap().value("one"), Some(1));
    std::fs::write(dir.join("loop"), "$INCLUDE loop\n").unwrap();
    let e = Dictionary::load(dir.join("loop")).unwrap_err();
    assert!(e.message.contains("too deep"));
    assert!(Dictionary::load(dir.join("absent")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The real FreeRADIUS tree (Debian package `freeradius-common`) loads without error.
#[test]
fn loads_the_real_freeradius_dictionary() {
    if !Path::new(FREERADIUS_DICTIONARY).exists() {
        if std::env::var_os("XLNS_SKIP_FREERADIUS").is_some_and(|v| v == "1") {
            return;
        }
        panic!(
            "{FREERADIUS_DICTIONARY} is missing: install freeradius (apt-get install freeradius \
             freeradius-utils) or set XLNS_SKIP_FREERADIUS=1"
        );
    }
    let d = Dictionary::load(FREERADIUS_DICTIONARY).unwrap();
    assert!(d.attribute_count() > 5000, "{}", d.attribute_count());
    assert!(d.vendor_count() > 150);
    // What xlns uses agrees with the built-in table.
    let b = Dictionary::builtin();
    for name in [
        "User-Name",
        "User-Password",
        "CHAP-Password",
        "Tunnel-Type",
        "Tunnel-Client-Endpoint",
        "Framed-Pool",
        "Framed-IPv6-Prefix",
        "Delegated-IPv6-Prefix",
        "Message-Authenticator",
        "Acct-Interim-Interval",
        "MS-CHAP-Challenge",
        "MS-CHAP2-Response",
        "MS-CHAP2-Success",
        "MS-MPPE-Send-Key",
        "MS-Primary-DNS-Server",
    ] {
        let real = d.attribute(name).unwrap_or_else(|| panic!("{name}"));
        let ours = b.attribute(name).unwrap();
        assert_eq!(
            (real.vendor, &real.oid, real.data_type, real.has_tag),
            (ours.vendor, &ours.oid, ours.data_type, ours.has_tag),
            "{name}"
        );
    }
    assert_eq!(d.attribute("Tunnel-Type").unwrap().value("L2TP"), Some(3));
    assert_eq!(d.vendor("Cisco").unwrap().id, 9);
    let wimax = d.vendor("WiMAX").unwrap();
    assert!(wimax.continuation);
    let ext = d.attribute("Frag-Status").unwrap();
    assert_eq!(ext.oid, vec![241, 1]);
}

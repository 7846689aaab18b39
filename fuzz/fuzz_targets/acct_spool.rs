#![no_main]
//! The accounting spool's file scan and record decoding (issue #7): any bytes give
//! entries up to the first torn one, never a panic; every entry re-encodes to the bytes
//! it came from, and every record that decodes re-encodes to an equal record.
use libfuzzer_sys::fuzz_target;
use xlns_controlplane::radius::acct::Record;
use xlns_controlplane::radius::spool::scan;

fuzz_target!(|data: &[u8]| {
    let s = scan(data);
    assert_eq!(s.valid_len + s.torn, data.len());
    let again: Vec<u8> = s.entries.iter().flat_map(|e| e.encode()).collect();
    assert_eq!(&again[..], &data[..s.valid_len]);
    for entry in &s.entries {
        if let Ok(record) = Record::decode(&entry.payload) {
            assert_eq!(Record::decode(&record.encode()), Ok(record));
        }
    }
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encoded_len(), record.encode().len());
    }
});

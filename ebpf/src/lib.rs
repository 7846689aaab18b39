//! The XDP program of xlns (C, built with libbpf-cargo) and its loader.
//!
//! Empty until the data-plane issue (#5) lands: the program that splits L2TP data from
//! control traffic on the access side and redirects subscriber prefixes on the core side.

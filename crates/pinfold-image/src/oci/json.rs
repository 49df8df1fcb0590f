//! Canonical JSON (RFC 8785 style: sorted keys, no insignificant white space) for
//! every blob whose digest matters. oci-spec keeps labels, annotations, ports and
//! volumes in `HashMap`s, so plain `serde_json` would print them in a different
//! order on each run; the canon-json formatter sorts them.

use canon_json::CanonJsonSerialize;
use serde::Serialize;

/// The canonical bytes of `value`.
pub fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    value
        .to_canon_json_vec()
        .expect("serializing OCI types to memory cannot fail: they hold no maps with non-string keys")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn hashmap_order_does_not_reach_the_bytes() {
        let a: HashMap<String, String> = (0..50).map(|i| (format!("k{i}"), i.to_string())).collect();
        let mut b = HashMap::new();
        for i in (0..50).rev() {
            b.insert(format!("k{i}"), i.to_string());
        }
        assert_eq!(canonical(&a), canonical(&b));
        assert!(String::from_utf8(canonical(&a)).unwrap().starts_with("{\"k0\":\"0\",\"k1\":\"1\",\"k10\""));
    }
}

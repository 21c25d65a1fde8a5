//! Protocol V2 TLV records (in progress).

//! Conversions: records of one kind turned into records of others, each in one unit of the
//! save pipeline — a lead into a customer, a contact and an opportunity ([`lead`], L-3), a
//! quote into an order with its lines ([`quote`], SA-3 → O-1).

pub mod lead;
pub mod quote;

pub use lead::{Conversion, convert};

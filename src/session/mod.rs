//! The BGP session: sans-IO RFC 4271 state machine, timers, negotiation, collision. Pure; time is passed in.

//! Adj-RIB-In, Loc-RIB, Adj-RIB-Out, best path, policy and route reflection. Pure.

//! Resources + node name → the node's desired BGP behaviour (peers, originated routes, policy). Pure.

//! Harness for the interop scenarios: network namespaces, veth, processes, waiting on conditions.

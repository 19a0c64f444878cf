//! The desired kernel route set and its diff against what the kernel holds. Pure.

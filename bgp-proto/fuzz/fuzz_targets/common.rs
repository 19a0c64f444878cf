// Shared by the fuzz targets: an arbitrary negotiated context.
use arbitrary::Arbitrary;
use bgp_proto::{AddPathFamilies, Context, Family};

#[derive(Debug, Arbitrary)]
pub struct FuzzContext {
    four_octet_as: bool,
    extended_message: bool,
    add_path: u8,
    internal: bool,
}

impl FuzzContext {
    pub fn context(&self) -> Context {
        let families = [
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::IPV4_MULTICAST,
            Family::IPV6_MULTICAST,
        ];
        let chosen: Vec<Family> = families
            .iter()
            .enumerate()
            .filter(|(i, _)| self.add_path & (1 << i) != 0)
            .map(|(_, f)| *f)
            .collect();
        Context {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path: AddPathFamilies::of(&chosen),
            internal: self.internal,
        }
    }
}

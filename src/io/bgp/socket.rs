//! Socket options for BGP connections: TCP-MD5 (RFC 2385), GTSM (RFC 5082), TTL, source address,
//! `TCP_NODELAY`, dual-stack listeners. `socket2` where it has the option, `libc` where not.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::session::{Password, TtlMode};

/// `struct tcp_md5sig` from `<linux/tcp.h>` (not in the `libc` crate).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; Password::MAX_LEN],
}

/// The address a key must be installed for on `socket`: an IPv4 peer on an IPv6 (dual-stack)
/// socket appears as an IPv4-mapped IPv6 address.
fn key_address(socket_is_v6: bool, peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) if socket_is_v6 => IpAddr::V6(v4.to_ipv6_mapped()),
        other => other,
    }
}

fn socket_is_v6(fd: &impl AsRawFd) -> io::Result<bool> {
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage is a valid, writable sockaddr_storage of `len` bytes.
    let rc = unsafe { libc::getsockname(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i32::from(storage.ss_family) == libc::AF_INET6)
}

/// Installs (or with `None`, removes) the TCP-MD5 key for `peer` on `fd` (RFC 2385).
///
/// On a listening socket this is per peer address; accepted connections inherit the key. On a
/// socket about to connect it must be set before `connect`.
pub fn set_md5_key(fd: &impl AsRawFd, peer: IpAddr, key: Option<&Password>) -> io::Result<()> {
    let v6 = socket_is_v6(fd)?;
    let addr = SockAddr::from(SocketAddr::new(key_address(v6, peer), 0));
    // SAFETY: an all-zero tcp_md5sig is valid (keylen 0 = delete).
    let mut sig: TcpMd5Sig = unsafe { mem::zeroed() };
    // SAFETY: SockAddr's storage is a sockaddr_storage of the same size.
    unsafe {
        std::ptr::copy_nonoverlapping(
            addr.as_ptr().cast::<u8>(),
            (&raw mut sig.addr).cast::<u8>(),
            addr.len() as usize,
        );
    }
    if let Some(key) = key {
        let bytes = key.expose();
        sig.keylen = bytes.len() as u16;
        sig.key[..bytes.len()].copy_from_slice(bytes);
    }
    // SAFETY: sig is a valid tcp_md5sig for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // Deleting a key that is not there is fine.
        if key.is_none() && err.raw_os_error() == Some(libc::ENOENT) {
            return Ok(());
        }
        return Err(err);
    }
    Ok(())
}

fn setsockopt_int(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: value is a valid c_int for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Applies the TTL mode to a connected or connecting socket towards `peer`.
///
/// GTSM (RFC 5082 §3): send with TTL 255 and drop segments whose TTL is below `256 - hops`
/// (`IP_MINTTL`, `IPV6_MINHOPCOUNT`). Multihop: send with the given TTL.
pub fn set_ttl(socket: &Socket, peer: IpAddr, mode: TtlMode) -> io::Result<()> {
    let (out, min) = match mode {
        TtlMode::Multihop(ttl) => (u32::from(ttl.max(1)), None),
        TtlMode::Security { hops } => (255, Some(256 - i32::from(hops.clamp(1, 255)))),
    };
    let v6 = socket_is_v6(socket)?;
    let peer_v4 = match peer {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6addr) => v6addr.to_ipv4_mapped().is_some(),
    };
    if peer_v4 {
        // IPv4 traffic (also over an IPv4-mapped IPv6 socket) uses the IPv4 options.
        socket.set_ttl_v4(out)?;
        if let Some(min) = min {
            setsockopt_int(socket, libc::IPPROTO_IP, libc::IP_MINTTL, min)?;
        }
    }
    if v6 && !peer_v4 {
        socket.set_unicast_hops_v6(out)?;
        if let Some(min) = min {
            setsockopt_int(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, min)?;
        }
    }
    Ok(())
}

/// A TCP socket for an outgoing connection to `peer`, ready for `connect`: `TCP_NODELAY`,
/// TCP-MD5 key, TTL/GTSM, bound to `source` (port 0 = any) if given.
pub fn outgoing_socket(
    peer: SocketAddr,
    source: Option<SocketAddr>,
    password: Option<&Password>,
    ttl: TtlMode,
) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(peer), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(key) = password {
        set_md5_key(&socket, peer.ip(), Some(key))?;
    }
    set_ttl(&socket, peer.ip(), ttl)?;
    if let Some(source) = source {
        socket.bind(&SockAddr::from(source))?;
    }
    Ok(socket)
}

/// A listening socket on `addr`: `SO_REUSEADDR`, dual-stack when `addr` is the IPv6 unspecified
/// address (IPv4 peers then appear as IPv4-mapped addresses), non-blocking.
pub fn listening_socket(addr: SocketAddr, backlog: i32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if let SocketAddr::V6(v6) = addr {
        socket.set_only_v6(*v6.ip() != Ipv6Addr::UNSPECIFIED)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(backlog)?;
    Ok(socket)
}

/// `addr` with an IPv4-mapped IPv6 address turned back into IPv4.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The socket address of `ip:port`, with `scope_id` when `ip` is IPv6 link-local.
pub fn scoped(ip: IpAddr, port: u16, scope_id: Option<u32>) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => SocketAddr::V6(
            std::net::SocketAddrV6::new(v6, port, 0, scope_id.unwrap_or(0)),
        ),
        other => SocketAddr::new(other, port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layout_matches_the_kernel() {
        // sizeof(struct tcp_md5sig) on Linux: 128 + 1 + 1 + 2 + 4 + 80.
        assert_eq!(mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn mapped_addresses() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            key_address(true, v4),
            "::ffff:192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(key_address(false, v4), v4);
        assert_eq!(canonical("::ffff:192.0.2.1".parse().unwrap()), v4);
    }

    #[test]
    fn options_apply_on_loopback_sockets() {
        // No root needed: MD5 keys, TTL and GTSM are plain socket options.
        let listener = listening_socket("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let key = Password::new("secret").unwrap();
        set_md5_key(&listener, "127.0.0.2".parse().unwrap(), Some(&key)).unwrap();
        set_md5_key(&listener, "127.0.0.2".parse().unwrap(), None).unwrap();
        set_md5_key(&listener, "127.0.0.3".parse().unwrap(), None).unwrap();
        let s = outgoing_socket(
            "127.0.0.1:179".parse().unwrap(),
            Some("127.0.0.1:0".parse().unwrap()),
            Some(&key),
            TtlMode::Security { hops: 1 },
        )
        .unwrap();
        assert_eq!(s.ttl_v4().unwrap(), 255);
        let s =
            outgoing_socket("[::1]:179".parse().unwrap(), None, None, TtlMode::default()).unwrap();
        assert_eq!(s.unicast_hops_v6().unwrap(), 64);
        let s = outgoing_socket(
            "[::1]:179".parse().unwrap(),
            None,
            None,
            TtlMode::Security { hops: 2 },
        )
        .unwrap();
        assert_eq!(s.unicast_hops_v6().unwrap(), 255);
    }

    fn getsockopt_int(fd: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: value and len are valid for the call.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    /// An IPv4 peer accepted on a dual-stack listener: GTSM uses the IPv4 options on the IPv6
    /// socket (TTL 255 out, minimum 256 - hops in).
    #[test]
    fn gtsm_on_an_ipv4_mapped_accepted_socket() {
        let listener = listening_socket("[::]:0".parse().unwrap(), 8).unwrap();
        listener.set_nonblocking(false).unwrap();
        let port = listener.local_addr().unwrap().as_socket().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, from) = listener.accept().unwrap();
        let from = canonical(from.as_socket().unwrap().ip());
        assert_eq!(from, "127.0.0.1".parse::<IpAddr>().unwrap());
        set_ttl(&accepted, from, TtlMode::Security { hops: 1 }).unwrap();
        assert_eq!(
            getsockopt_int(&accepted, libc::IPPROTO_IP, libc::IP_TTL),
            255
        );
        assert_eq!(
            getsockopt_int(&accepted, libc::IPPROTO_IP, libc::IP_MINTTL),
            255
        );
        // MD5 keys for IPv4 peers go in as IPv4-mapped addresses on this listener.
        set_md5_key(&listener, from, Password::new("k").as_ref()).unwrap();
    }
}

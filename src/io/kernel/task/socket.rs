//! Options of the event socket: its receive buffer and the BPF filter that drops tern's own
//! route notifications.

/// Sets the socket's receive buffer (`SO_RCVBUFFORCE` when permitted, else `SO_RCVBUF`, which
/// the kernel caps at `net.core.rmem_max`) and returns the size the kernel reports.
pub(super) fn force_receive_buffer(fd: i32, bytes: usize) -> usize {
    let value = i32::try_from(bytes).unwrap_or(i32::MAX);
    let size = std::mem::size_of::<i32>() as libc::socklen_t;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt with a valid fd, a pointer to an i32 and its size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&value as *const i32).cast(),
                size,
            )
        };
        if rc == 0 {
            break;
        }
    }
    let mut actual: i32 = 0;
    let mut len = size;
    // SAFETY: getsockopt with a valid fd, a pointer to an i32 and its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut actual as *mut i32).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        usize::try_from(actual).unwrap_or(0)
    } else {
        0
    }
}

/// Attaches a classic BPF filter to the event socket that drops `RTM_NEWROUTE` notifications of
/// tern's own protocol in the kernel: each of tern's writes would otherwise come back as a
/// notification to copy, wake up for and parse (it halves the install rate of large tables).
/// Deletions of tern's routes and every route of other protocols still arrive. The cost: a route
/// of tern's protocol written by another process is only seen at the next resynchronisation.
pub(super) fn drop_own_route_notifications(fd: i32, protocol: u8) -> std::io::Result<()> {
    const RTM_NEWROUTE: u32 = 24;
    // nlmsghdr.nlmsg_type is a host-order u16 at offset 4; rtmsg.rtm_protocol is at 16 + 5.
    let (type_low, type_high) = if cfg!(target_endian = "little") {
        (4, 5)
    } else {
        (5, 4)
    };
    let load_byte = |offset: u32| libc::sock_filter {
        code: 0x30,
        jt: 0,
        jf: 0,
        k: offset,
    }; // ld b [k]
    let jump_unless = |value: u32, skip: u8| libc::sock_filter {
        code: 0x15,
        jt: 0,
        jf: skip,
        k: value,
    }; // jeq
    let ret = |value: u32| libc::sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: value,
    };
    let mut program = [
        load_byte(type_low),
        jump_unless(RTM_NEWROUTE, 5),
        load_byte(type_high),
        jump_unless(0, 3),
        load_byte(16 + 5),
        jump_unless(u32::from(protocol), 1),
        ret(0),
        ret(u32::MAX),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: a valid fd and a filter program that outlives the call (the kernel copies it).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

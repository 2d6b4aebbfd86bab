//! The receiver's side of the Frame Streams handshake, as a state machine named for what it
//! expects next: which control frame is acceptable when, what to reply (ACCEPT, FINISH,
//! appended to a caller-owned buffer for the I/O layer to send), and what an EOF means in
//! each state. It gets whole, parsed control frames from [`super::Decoder`] and knows nothing
//! of how frames are split off the byte stream, nor of sockets.
//!
//! ```text
//! bidirectional (unix/TCP/TLS senders: unbound, bind, nsd, knot, kresd, dnsdist, pdns):
//!   sender                              receiver (us)
//!   READY [content types]       ──►
//!                               ◄──     ACCEPT [protobuf:dnstap.Dnstap]
//!   START [content type]        ──►
//!   data frames ...             ──►
//!   STOP                        ──►     (or EOF: pdns-recursor and dnsdist just close)
//!                               ◄──     FINISH
//! unidirectional (files, unbound with dnstap-bidirectional: no):
//!   START [content type], data frames ..., STOP; no replies.
//! ```
//!
//! The handshake mode is taken from the first control frame: READY means bidirectional,
//! START means unidirectional.
#![forbid(unsafe_code)]

use super::control::{write_control_frame, ControlFrame};
use super::error::{describe_offered, Error, ErrorKind};
use super::protocol::{ControlType, DNSTAP_CONTENT_TYPE};

/// Where the receiver's handshake is, named for what it expects next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing yet: READY (bidirectional) or START (unidirectional).
    ExpectReadyOrStart,
    /// READY was accepted (ACCEPT sent): START.
    ExpectStart,
    /// Data frames, until STOP or EOF.
    Data,
    /// STOP was received: nothing more.
    Stopped,
    /// An error was returned; the connection must be closed.
    Failed,
}

impl State {
    /// What this state waits for, for error messages.
    fn expecting(self) -> &'static str {
        match self {
            State::ExpectReadyOrStart => "READY or START",
            State::ExpectStart => "START",
            State::Data => "data frames or STOP",
            State::Stopped => "nothing (the stream was stopped)",
            State::Failed => "nothing (the stream failed)",
        }
    }
}

/// Where the receiver's handshake is, and whether the peer wants replies.
#[derive(Debug)]
pub(super) struct Handshake {
    pub(super) state: State,
    /// Set by READY: STOP must then be answered with FINISH.
    pub(super) bidirectional: bool,
}

impl Handshake {
    pub(super) fn new() -> Self {
        Handshake {
            state: State::ExpectReadyOrStart,
            bidirectional: false,
        }
    }

    /// Runs the handshake for one complete control frame, found at stream offset `at`. The
    /// caller tells [`Event::Finished`](super::Event::Finished) (the state is now
    /// [`State::Stopped`]) from [`Event::Control`](super::Event::Control).
    pub(super) fn on_control(
        &mut self,
        frame: ControlFrame<'_>,
        at: u64,
        reply: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let got = frame.control_type();
        match (self.state, got) {
            (State::ExpectReadyOrStart, ControlType::Ready) => {
                if !frame.content_types().any(|t| t == DNSTAP_CONTENT_TYPE) {
                    return Err(mismatch(&frame, at));
                }
                write_control_frame(ControlType::Accept, Some(DNSTAP_CONTENT_TYPE), reply);
                self.bidirectional = true;
                self.state = State::ExpectStart;
                Ok(())
            }
            (State::ExpectReadyOrStart | State::ExpectStart, ControlType::Start) => {
                let mut types = frame.content_types();
                match (types.next(), types.next()) {
                    (None, _) => {}
                    (Some(t), None) if t == DNSTAP_CONTENT_TYPE => {}
                    (Some(_), None) => return Err(mismatch(&frame, at)),
                    (Some(_), Some(_)) => {
                        return Err(Error::new(
                            ErrorKind::MalformedControl {
                                control: got,
                                reason: "START carries more than one content type",
                            },
                            at,
                        ))
                    }
                }
                self.state = State::Data;
                Ok(())
            }
            (State::Data, ControlType::Stop) => {
                if self.bidirectional {
                    write_control_frame(ControlType::Finish, None, reply);
                }
                self.state = State::Stopped;
                Ok(())
            }
            (state, got) => Err(Error::new(
                ErrorKind::UnexpectedControl {
                    got,
                    expected: state.expecting(),
                },
                at,
            )),
        }
    }

    /// The peer closed the connection. `unconsumed` is how many bytes were left undecoded.
    /// EOF without STOP after START is a clean end; EOF inside a frame or before START is not.
    /// EOF inside a frame is `EofMidFrame` in every state, so `EofBeforeStart` means the peer
    /// stopped between whole frames of the handshake.
    /// (A peer that connects and closes without sending a byte gets `EofBeforeStart` at
    /// offset 0; the I/O layer may log that more quietly, e.g. for health probes.)
    /// `offset` is the stream offset of the first undecoded byte.
    pub(super) fn on_eof(&self, unconsumed: usize, offset: u64) -> Result<(), Error> {
        let kind = match self.state {
            State::Data | State::Stopped if unconsumed == 0 => return Ok(()),
            State::Stopped => ErrorKind::BytesAfterStop,
            State::Failed => ErrorKind::AlreadyFailed,
            // Inside a frame, handshake or not: a peer that sent half a START is not a
            // probe that sent nothing.
            State::Data | State::ExpectReadyOrStart | State::ExpectStart if unconsumed > 0 => {
                ErrorKind::EofMidFrame {
                    pending: unconsumed,
                }
            }
            State::Data => ErrorKind::EofMidFrame {
                pending: unconsumed,
            },
            State::ExpectReadyOrStart | State::ExpectStart => ErrorKind::EofBeforeStart {
                expected: self.state.expecting(),
            },
        };
        Err(Error::new(kind, offset))
    }
}

/// The content-type refusal for `frame`, with a bounded copy of what it offered.
fn mismatch(frame: &ControlFrame<'_>, at: u64) -> Error {
    let offered = frame.content_types().count();
    Error {
        kind: ErrorKind::ContentTypeMismatch {
            control: frame.control_type(),
            offered: u32::try_from(offered).unwrap_or(u32::MAX),
        },
        offset: at,
        offered: Some(describe_offered(frame.content_types())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::decoder::Event;
    use super::super::protocol::ControlType;
    use super::super::testkit::{ctrl, data, err_kind, one_shot, DT};
    use super::ErrorKind;

    #[test]
    fn unidirectional_stream_has_no_replies() {
        let s = [
            ctrl(ControlType::Start, &[DT]),
            data(b"one"),
            data(b"two"),
            ctrl(ControlType::Stop, &[]),
        ]
        .concat();
        let t = one_shot(&s);
        assert_eq!(t.end, Ok(()));
        assert!(t.reply.is_empty());
        let payloads: Vec<&[u8]> = t.events.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(payloads, [&b""[..], b"one", b"two", b""]);
        assert_eq!(t.events.last().map(|e| &e.0), Some(&Event::Finished));
    }

    #[test]
    fn bidirectional_stream_gets_accept_and_finish() {
        let s = [
            ctrl(ControlType::Ready, &[b"protobuf:other", DT]),
            ctrl(ControlType::Start, &[DT]),
            data(b"x"),
            ctrl(ControlType::Stop, &[]),
        ]
        .concat();
        let t = one_shot(&s);
        assert_eq!(t.end, Ok(()));
        let want = [
            ctrl(ControlType::Accept, &[DT]),
            ctrl(ControlType::Finish, &[]),
        ]
        .concat();
        assert_eq!(t.reply, want);
    }

    #[test]
    fn start_without_content_type_is_accepted() {
        let s = [ctrl(ControlType::Start, &[]), data(b"x")].concat();
        assert_eq!(one_shot(&s).end, Ok(()));
    }

    #[test]
    fn ready_without_dnstap_content_type_names_what_was_offered() {
        let s = ctrl(ControlType::Ready, &[b"protobuf:foo", b"a\nb"]);
        let t = one_shot(&s);
        let err = t.end.unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::ContentTypeMismatch {
                control: ControlType::Ready,
                offered: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "content type mismatch: peer offered \"protobuf:foo\", \"a\\x0ab\" \
             (expected \"protobuf:dnstap.Dnstap\") in READY"
        );
        assert!(t.reply.is_empty(), "no ACCEPT for a refused READY");
        let t = one_shot(&ctrl(ControlType::Ready, &[]));
        assert_eq!(
            err_kind(&t),
            ErrorKind::ContentTypeMismatch {
                control: ControlType::Ready,
                offered: 0
            }
        );
    }

    #[test]
    fn start_with_another_content_type_is_refused() {
        let t = one_shot(&ctrl(ControlType::Start, &[b"protobuf:foo"]));
        let err = t.end.unwrap_err();
        assert_eq!(
            err.to_string(),
            "content type mismatch: peer offered \"protobuf:foo\" \
             (expected \"protobuf:dnstap.Dnstap\") in START"
        );
        let s = [
            ctrl(ControlType::Ready, &[DT]),
            ctrl(ControlType::Start, &[b"x"]),
        ]
        .concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::ContentTypeMismatch { .. }
        ));
        let t = one_shot(&ctrl(ControlType::Start, &[DT, DT]));
        assert!(matches!(err_kind(&t), ErrorKind::MalformedControl { .. }));
    }

    #[test]
    fn second_start_and_ready_after_start_are_refused() {
        let start = ctrl(ControlType::Start, &[DT]);
        let s = [&start[..], &data(b"a"), &start].concat();
        assert_eq!(
            err_kind(&one_shot(&s)),
            ErrorKind::UnexpectedControl {
                got: ControlType::Start,
                expected: "data frames or STOP"
            }
        );
        let s = [&start[..], &ctrl(ControlType::Ready, &[DT])].concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::UnexpectedControl {
                got: ControlType::Ready,
                ..
            }
        ));
        let s = [
            ctrl(ControlType::Ready, &[DT]),
            ctrl(ControlType::Ready, &[DT]),
        ]
        .concat();
        assert!(matches!(
            err_kind(&one_shot(&s)),
            ErrorKind::UnexpectedControl { .. }
        ));
        for odd in [ControlType::Accept, ControlType::Finish, ControlType::Stop] {
            let t = one_shot(&ctrl(odd, &[]));
            assert_eq!(
                err_kind(&t),
                ErrorKind::UnexpectedControl {
                    got: odd,
                    expected: "READY or START"
                }
            );
        }
    }

    #[test]
    fn eof_mid_frame_says_how_much_was_pending() {
        let s = [ctrl(ControlType::Start, &[DT]), data(b"abcdef")].concat();
        let t = one_shot(&s[..s.len() - 2]);
        let err = t.end.unwrap_err();
        assert_eq!(err.kind, ErrorKind::EofMidFrame { pending: 8 });
        assert_eq!(
            err.to_string(),
            "connection closed in the middle of a frame (8 bytes pending, stream offset 42)"
        );
        // Inside the length word, too.
        let t = one_shot(&s[..44]);
        assert_eq!(err_kind(&t), ErrorKind::EofMidFrame { pending: 2 });
    }

    #[test]
    fn eof_without_stop_is_clean_end() {
        // pdns-recursor and dnsdist close the socket without STOP.
        let s = [
            ctrl(ControlType::Ready, &[DT]),
            ctrl(ControlType::Start, &[DT]),
            data(b"a"),
        ]
        .concat();
        let t = one_shot(&s);
        assert_eq!(t.end, Ok(()));
        assert_eq!(
            t.reply,
            ctrl(ControlType::Accept, &[DT]),
            "no FINISH without STOP"
        );
    }

    #[test]
    fn eof_before_start_is_an_error() {
        assert_eq!(
            err_kind(&one_shot(&[])),
            ErrorKind::EofBeforeStart {
                expected: "READY or START"
            }
        );
        let t = one_shot(&ctrl(ControlType::Ready, &[DT]));
        assert_eq!(
            err_kind(&t),
            ErrorKind::EofBeforeStart { expected: "START" }
        );
    }

    #[test]
    fn eof_inside_a_handshake_frame_is_mid_frame() {
        // Half a START: the peer sent something, so this is not a silent probe.
        let start = ctrl(ControlType::Start, &[DT]);
        for cut in 1..start.len() {
            let t = one_shot(&start[..cut]);
            assert_eq!(
                err_kind(&t),
                ErrorKind::EofMidFrame { pending: cut },
                "{cut}"
            );
        }
        let mut s = ctrl(ControlType::Ready, &[DT]);
        s.extend_from_slice(&start[..5]);
        assert_eq!(
            err_kind(&one_shot(&s)),
            ErrorKind::EofMidFrame { pending: 5 }
        );
    }
}

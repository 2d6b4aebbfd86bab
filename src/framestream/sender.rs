//! Sender side of the Frame Streams handshake, sans-io, for loadgen and tests: produces
//! READY / START / STOP into a caller buffer and checks the receiver's ACCEPT and FINISH.
//!
//! Data frames themselves are written with [`super::write_data_frame`]; this type only keeps
//! the control frames in order. It never touches a socket.

use super::control::{self, ControlSplit};
use super::error::{describe_offered, Error, ErrorKind};
use super::protocol::{ControlType, DNSTAP_CONTENT_TYPE};

/// Where the sender is, named for what comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderState {
    /// Nothing sent: `write_ready` (bidirectional) or `write_start` (unidirectional).
    Initial,
    /// READY sent: waiting for the receiver's ACCEPT.
    ExpectAccept,
    /// ACCEPT received: `write_start`.
    Accepted,
    /// START sent: data frames, then `write_stop`.
    Data,
    /// STOP sent on a bidirectional stream: waiting for FINISH.
    ExpectFinish,
    /// Done (FINISH received, or STOP sent on a unidirectional stream).
    Finished,
    /// An error was returned.
    Failed,
}

impl SenderState {
    fn expecting(self) -> &'static str {
        match self {
            SenderState::Initial => "READY or START to be sent",
            SenderState::ExpectAccept => "ACCEPT",
            SenderState::Accepted => "START to be sent",
            SenderState::Data => "data frames or STOP to be sent",
            SenderState::ExpectFinish => "FINISH",
            SenderState::Finished => "nothing (the stream is finished)",
            SenderState::Failed => "nothing (the stream failed)",
        }
    }
}

/// What [`SenderHandshake::on_read`] made of the receiver's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderEvent {
    /// No complete control frame yet; `consumed` is 0.
    NeedMore,
    /// The receiver accepted our content type: call `write_start`.
    Accepted,
    /// The receiver answered STOP with FINISH: close the connection.
    Finished,
}

/// One step of [`SenderHandshake::on_read`]. Invariant: `0 <= consumed <= buf.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderStep {
    pub consumed: usize,
    pub event: SenderEvent,
}

/// The sender's handshake for content type `protobuf:dnstap.Dnstap`.
///
/// Bidirectional: `write_ready`, feed the receiver's bytes to `on_read` until `Accepted`,
/// `write_start`, data frames, `write_stop`, `on_read` until `Finished`.
/// Unidirectional: `write_start`, data frames, `write_stop`.
#[derive(Debug)]
pub struct SenderHandshake {
    state: SenderState,
    bidirectional: bool,
    /// Bytes of the receiver's stream consumed so far, for error offsets.
    offset: u64,
}

impl Default for SenderHandshake {
    fn default() -> Self {
        SenderHandshake::new()
    }
}

impl SenderHandshake {
    pub fn new() -> Self {
        SenderHandshake {
            state: SenderState::Initial,
            bidirectional: false,
            offset: 0,
        }
    }

    pub fn state(&self) -> SenderState {
        self.state
    }

    /// Appends READY (offering the dnstap content type) to `out`.
    pub fn write_ready(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.expect(SenderState::Initial, ControlType::Ready)?;
        control::write_control_frame(ControlType::Ready, Some(DNSTAP_CONTENT_TYPE), out);
        self.bidirectional = true;
        self.state = SenderState::ExpectAccept;
        Ok(())
    }

    /// Appends START (with the dnstap content type) to `out`: after ACCEPT, or first thing
    /// for a unidirectional stream.
    pub fn write_start(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let from = if self.bidirectional {
            SenderState::Accepted
        } else {
            SenderState::Initial
        };
        self.expect(from, ControlType::Start)?;
        control::write_control_frame(ControlType::Start, Some(DNSTAP_CONTENT_TYPE), out);
        self.state = SenderState::Data;
        Ok(())
    }

    /// Appends STOP to `out`. Bidirectional streams then wait for FINISH.
    pub fn write_stop(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.expect(SenderState::Data, ControlType::Stop)?;
        control::write_control_frame(ControlType::Stop, None, out);
        self.state = if self.bidirectional {
            SenderState::ExpectFinish
        } else {
            SenderState::Finished
        };
        Ok(())
    }

    /// Reads at most one control frame the receiver sent (ACCEPT or FINISH) from `buf`.
    pub fn on_read(&mut self, buf: &[u8]) -> Result<SenderStep, Error> {
        let at = self.offset;
        let result = self.on_read_inner(buf);
        match result {
            Ok(step) => {
                self.offset += step.consumed as u64;
                Ok(step)
            }
            Err(kind) => {
                let offered = match kind {
                    ErrorKind::ContentTypeMismatch { .. } => offered_in(buf),
                    _ => None,
                };
                self.state = SenderState::Failed;
                Err(Error {
                    kind,
                    offset: at,
                    offered,
                })
            }
        }
    }

    fn on_read_inner(&mut self, buf: &[u8]) -> Result<SenderStep, ErrorKind> {
        const NEED_MORE: SenderStep = SenderStep {
            consumed: 0,
            event: SenderEvent::NeedMore,
        };
        if self.state == SenderState::Failed {
            return Err(ErrorKind::AlreadyFailed);
        }
        let Some(word) = buf.first_chunk::<4>() else {
            return Ok(NEED_MORE);
        };
        let len = u32::from_be_bytes(*word);
        if len != 0 {
            return Err(ErrorKind::UnexpectedDataFrame { len });
        }
        let (len, frame) = match control::split_control(buf)? {
            ControlSplit::Incomplete { .. } => return Ok(NEED_MORE),
            ControlSplit::Complete { len, frame } => (len, frame),
        };
        let event = match (self.state, frame.control_type()) {
            (SenderState::ExpectAccept, ControlType::Accept) => {
                if !frame.content_types().any(|t| t == DNSTAP_CONTENT_TYPE) {
                    let offered = frame.content_types().count();
                    return Err(ErrorKind::ContentTypeMismatch {
                        control: ControlType::Accept,
                        offered: u32::try_from(offered).unwrap_or(u32::MAX),
                    });
                }
                self.state = SenderState::Accepted;
                SenderEvent::Accepted
            }
            (SenderState::ExpectFinish, ControlType::Finish) => {
                self.state = SenderState::Finished;
                SenderEvent::Finished
            }
            (state, got) => {
                return Err(ErrorKind::UnexpectedControl {
                    got,
                    expected: state.expecting(),
                })
            }
        };
        Ok(SenderStep {
            consumed: len,
            event,
        })
    }

    fn expect(&mut self, want: SenderState, action: ControlType) -> Result<(), Error> {
        if self.state == want {
            return Ok(());
        }
        let expected = self.state.expecting();
        self.state = SenderState::Failed;
        Err(Error::new(
            ErrorKind::SenderOutOfOrder { action, expected },
            self.offset,
        ))
    }
}

/// The offered-types text of the control frame at the front of `buf` (cold path).
fn offered_in(buf: &[u8]) -> Option<Box<str>> {
    match control::split_control(buf) {
        Ok(ControlSplit::Complete { frame, .. }) => Some(describe_offered(frame.content_types())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framestream::{write_control_frame, Decoder, DecoderConfig, Event};

    #[test]
    fn bidirectional_handshake_against_our_decoder() {
        let mut tx = SenderHandshake::new();
        let mut rx = Decoder::new(DecoderConfig::default());
        let mut wire = Vec::new();
        let mut back = Vec::new();
        tx.write_ready(&mut wire).unwrap();
        assert_eq!(rx.decode(&wire, &mut back).unwrap().event, Event::Control);
        wire.clear();
        // The ACCEPT split in two reads.
        assert_eq!(
            tx.on_read(&back[..10]).unwrap().event,
            SenderEvent::NeedMore
        );
        let step = tx.on_read(&back).unwrap();
        assert_eq!(
            step,
            SenderStep {
                consumed: back.len(),
                event: SenderEvent::Accepted
            }
        );
        back.clear();
        tx.write_start(&mut wire).unwrap();
        crate::framestream::write_data_frame(b"payload", &mut wire);
        tx.write_stop(&mut wire).unwrap();
        let mut at = 0;
        let mut events = Vec::new();
        while at < wire.len() {
            let step = rx.decode(&wire[at..], &mut back).unwrap();
            at += step.consumed;
            events.push(step.event);
        }
        assert_eq!(
            events,
            [
                Event::Control,
                Event::Data { payload: 4..11 },
                Event::Finished
            ]
        );
        assert_eq!(tx.state(), SenderState::ExpectFinish);
        assert_eq!(tx.on_read(&back).unwrap().event, SenderEvent::Finished);
        assert_eq!(tx.state(), SenderState::Finished);
    }

    #[test]
    fn unidirectional_sender_needs_no_replies() {
        let mut tx = SenderHandshake::new();
        let mut wire = Vec::new();
        tx.write_start(&mut wire).unwrap();
        tx.write_stop(&mut wire).unwrap();
        assert_eq!(tx.state(), SenderState::Finished);
        let mut rx = Decoder::new(DecoderConfig::default());
        let mut back = Vec::new();
        let first = rx.decode(&wire, &mut back).unwrap();
        let second = rx.decode(&wire[first.consumed..], &mut back).unwrap();
        assert_eq!(second.event, Event::Finished);
        assert!(back.is_empty());
    }

    #[test]
    fn accept_with_another_content_type_is_refused() {
        let mut tx = SenderHandshake::new();
        tx.write_ready(&mut Vec::new()).unwrap();
        let mut accept = Vec::new();
        write_control_frame(ControlType::Accept, Some(b"protobuf:other"), &mut accept);
        let err = tx.on_read(&accept).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::ContentTypeMismatch {
                control: ControlType::Accept,
                offered: 1
            }
        );
        assert!(err.to_string().contains("\"protobuf:other\""), "{err}");
    }

    #[test]
    fn out_of_order_calls_are_errors_not_panics() {
        let mut tx = SenderHandshake::new();
        tx.write_ready(&mut Vec::new()).unwrap();
        let err = tx.write_start(&mut Vec::new()).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::SenderOutOfOrder {
                action: ControlType::Start,
                expected: "ACCEPT"
            }
        );
        let mut tx = SenderHandshake::new();
        let err = tx.on_read(&[0, 0, 0, 5, 1]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnexpectedDataFrame { len: 5 });
        let mut tx = SenderHandshake::new();
        tx.write_ready(&mut Vec::new()).unwrap();
        let mut finish = Vec::new();
        write_control_frame(ControlType::Finish, None, &mut finish);
        let err = tx.on_read(&finish).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::UnexpectedControl {
                got: ControlType::Finish,
                expected: "ACCEPT"
            }
        );
    }
}

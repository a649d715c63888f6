/** What a client's first message carries, read by the protocol it speaks. */
export interface FirstMessage {
  /** Handed to the authenticator as the credential's token. */
  readonly token: string;
}

/**
 * How a client speaks to sidecast once its WebSocket is open. The lifecycle asks the protocol to
 * read the first message and nothing else: every other step (deadline, authentication, per-user
 * limit, registration, close codes) is the same whatever the protocol.
 */
export interface ClientProtocol {
  readFirstMessage(text: string): FirstMessage;
}

/** The websockets guide's protocol: the whole first message is the token, events are sent bare. */
export const GUIDE_PROTOCOL: ClientProtocol = {
  readFirstMessage: (text) => ({ token: text }),
};

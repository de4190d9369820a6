/**
 * `useChat`: a conversation with an ssechat server as React state.
 *
 *     import { useChat } from "@ssechat/client/react";
 *
 *     const { messages, status, send, stop, retry, resume } = useChat({ pipeline: "rag" });
 *
 * A thin `useSyncExternalStore` over `ChatSession` (see its docs for the behaviour): each
 * state is an immutable snapshot, so components re-render exactly when something changed,
 * and the action functions keep their identity for the component's whole life. Unmounting
 * stops listening but leaves the run to finish (or be stopped by the server's grace period).
 */

import { useEffect, useRef, useSyncExternalStore } from "react";

import {
  ChatSession,
  type ChatMessage,
  type ChatSessionOptions,
  type ChatState,
  type SendOptions,
} from "./session.js";

export type UseChatOptions = ChatSessionOptions;

export interface UseChatResult extends ChatState {
  /** Ask a question; resolves with the answer once its run has ended. */
  send: (text: string, options?: SendOptions) => Promise<ChatMessage>;
  /** Stop the answer being streamed (cancels the run on the server). */
  stop: () => Promise<void>;
  /** Ask the last question again, replacing the answer after it. */
  retry: (options?: SendOptions) => Promise<ChatMessage | null>;
  /** Follow the last answer's run again from the last event it saw. */
  resume: () => Promise<ChatMessage | null>;
  /** Show a conversation stored on the server. */
  load: (conversationId: string) => Promise<void>;
  /** Start a new conversation. */
  reset: (conversationId?: string | null) => void;
  /** The underlying store, for anything the hook does not expose. */
  session: ChatSession;
}

export function useChat(options: UseChatOptions = {}): UseChatResult {
  const ref = useRef<{
    session: ChatSession;
    actions: Omit<UseChatResult, keyof ChatState>;
  } | null>(null);
  if (ref.current === null) {
    const session = new ChatSession(options);
    ref.current = {
      session,
      actions: {
        session,
        send: (text, opts) => session.send(text, opts),
        stop: () => session.stop(),
        retry: (opts) => session.retry(opts),
        resume: () => session.resume(),
        load: (id) => session.load(id),
        reset: (id) => session.reset(id),
      },
    };
  }
  const { session, actions } = ref.current;
  // The latest options apply to the next request (a changed pipeline picker, say).
  useEffect(() => {
    session.setOptions(options);
  });
  useEffect(() => () => session.dispose(), [session]);
  const state = useSyncExternalStore(session.subscribe, session.getState, session.getState);
  return { ...state, ...actions };
}

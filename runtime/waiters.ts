/**
 * Long-poll waiters of the queue server: claims wait per node for a task they may take, result waits per
 * task for it to end. A waiter is woken (its request re-checks the store) or times out; a closed client
 * connection removes it at once.
 */
import type { FastifyReply } from "fastify";

type Waiter = () => void;

/** The server's long-poll waiters; `close()` wakes every one of them and refuses new waits. */
export class Waiters {
  /** Claims waiting, by node, longest-waiting first. */
  private readonly claims = new Map<string, Set<Waiter>>();
  /** Result waits, by task id. */
  private readonly results = new Map<number, Set<Waiter>>();
  /** Set by {@link close}: every wait returns at once. */
  closing = false;

  private static wake<K>(map: Map<K, Set<Waiter>>, key: K): void {
    const set = map.get(key);
    if (!set) return;
    map.delete(key);
    for (const w of set) w();
  }

  private static wait<K>(map: Map<K, Set<Waiter>>, key: K, ms: number, reply: FastifyReply, closing: boolean): Promise<void> {
    return new Promise((resolve) => {
      if (closing) return resolve();
      let set = map.get(key);
      if (!set) map.set(key, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        reply.raw.off("close", done);
        map.get(key)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      reply.raw.on("close", done);
      set.add(done);
    });
  }

  /** Wakes the longest-waiting claim of `node` (one new task wakes one claim per eligible node, not the whole herd). */
  wakeClaim(node: string): void {
    const first = this.claims.get(node)?.values().next().value;
    if (first) first();
  }

  /** Wakes every wait on task `id` (it reached a final state). */
  wakeResult(id: number): void {
    Waiters.wake(this.results, id);
  }

  /** Waits up to `ms` milliseconds for a claim of `node` to be worth retrying, or for the client to leave. */
  waitClaim(node: string, ms: number, reply: FastifyReply): Promise<void> {
    return Waiters.wait(this.claims, node, ms, reply, this.closing);
  }

  /** Waits up to `ms` milliseconds for task `id` to end, or for the client to leave. */
  waitResult(id: number, ms: number, reply: FastifyReply): Promise<void> {
    return Waiters.wait(this.results, id, ms, reply, this.closing);
  }

  /** Refuses new waits and wakes every waiting request, so each answers now. */
  close(): void {
    this.closing = true;
    for (const k of [...this.claims.keys()]) Waiters.wake(this.claims, k);
    for (const k of [...this.results.keys()]) Waiters.wake(this.results, k);
  }
}

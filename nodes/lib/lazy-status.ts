/**
 * A node status rendered only when it is shown: mark() on every message costs a flag, and the
 * text (catalogue lookup, number formatting) is built at most once per interval. No Node-RED import.
 */
import type { Node, NodeStatus } from './red';

export class LazyStatus {
  private timer: NodeJS.Timeout | undefined;
  private due = false;
  private last = '';

  constructor(
    private readonly node: Pick<Node, 'status'>,
    private readonly render: () => NodeStatus,
    private readonly intervalMs = 500,
  ) {}

  /** Something the status shows changed: shown now when nothing was shown within the interval, else at its end. */
  mark(): void {
    if (this.timer !== undefined) {
      this.due = true;
      return;
    }
    this.show();
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
  }

  private tick(): void {
    this.timer = undefined;
    if (!this.due) return;
    this.due = false;
    this.show();
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
  }

  private show(): void {
    const s = this.render();
    const key = `${s.fill}|${s.shape}|${s.text}`;
    if (key === this.last) return;
    this.last = key;
    this.node.status(s);
  }

  /** Stops the timer (call from the node's close handler). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.due = false;
  }
}

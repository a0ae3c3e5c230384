/**
 * Fans the control-plane view out to long-lived calls (Metadata streams): `follow()` yields the
 * current view at once and then every new view, until the signal aborts.
 */
import { AsyncQueue, type ControlPlaneSource, type ControlPlaneView } from '@hadron/core';

export class ViewFeed {
  constructor(private readonly source: ControlPlaneSource) {}

  current(): ControlPlaneView {
    return this.source.view();
  }

  /** Calls `listener` with every new view; returns the unsubscribe function. */
  onChange(listener: (v: ControlPlaneView) => void): () => void {
    this.source.on('change', listener);
    return () => this.source.off('change', listener);
  }

  follow(signal: AbortSignal): AsyncIterableIterator<ControlPlaneView> {
    const q = new AsyncQueue<ControlPlaneView>();
    const onChange = (v: ControlPlaneView): void => q.push(v);
    const stop = (): void => {
      this.source.off('change', onChange);
      q.end();
    };
    q.push(this.source.view());
    this.source.on('change', onChange);
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    return q;
  }
}

// A token bucket shared by every connection of a run, one per direction. Takers may drive it
// into debt and then wait the debt out, so concurrent takers queue behind each other in order
// and the long-run rate is exactly `rate` bytes per second (with `burst` bytes of head start).
import { setTimeout as sleep } from 'node:timers/promises';

export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly rate: number, private readonly burst: number) {
    this.tokens = burst;
  }

  async take(n: number): Promise<void> {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    this.tokens -= n;
    if (this.tokens < 0) await sleep((-this.tokens / this.rate) * 1000);
  }
}

/** Burst: a tenth of a second's worth, at least one slice, so small requests are not delayed. */
export const SLICE = 16 * 1024;
export const bucketFor = (rate: number) => new TokenBucket(rate, Math.max(SLICE, rate / 10));

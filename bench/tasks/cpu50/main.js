function(input) {
  // About 50 ms of CPU: spin on the clock.
  const end = Date.now() + (input.ms ?? 50);
  let n = 0;
  while (Date.now() < end) n++;
  return { n: n > 0 };
}

// The sign-in page waiting for a push: when the decision arrives on the event stream, continue at once.
// Without JavaScript (or if the stream fails) the "Continue" button does the same.
const form = document.getElementById('push-form');
if (form && form.dataset.events && 'EventSource' in window) {
  const events = new EventSource(form.dataset.events);
  events.addEventListener('decision', () => {
    events.close();
    form.submit();
  });
  events.addEventListener('end', () => events.close());
}

// Security info, setting up the Portcullis Authenticator: when the phone pairs or answers the test
// request, show the next step at once. Without JavaScript, the "Continue" button does the same.
const status = document.getElementById('pairing-status');
if (status && 'EventSource' in window) {
  const events = new EventSource(status.dataset.events);
  events.addEventListener('update', () => {
    events.close();
    window.location.assign(status.dataset.next);
  });
}

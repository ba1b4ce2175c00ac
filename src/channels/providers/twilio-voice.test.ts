import { describe, expect, it } from 'vitest';
import { buildVoiceTwiml, escapeXml, spellOut } from './twilio-voice.js';

const say = (text: string) => `<Say voice="alice" language="en-GB">${text}</Say>`;

describe('the voice call script (TwiML)', () => {
  it('reads the code digit by digit, then again after a pause', () => {
    expect(buildVoiceTwiml({ text: 'Your Portcullis sign-in code is 123456.', code: '123456' })).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><Response>' +
        say('Your Portcullis sign-in code is 1, 2, 3, 4, 5, 6.') +
        '<Pause length="1"/>' +
        say('Again, your code is 1, 2, 3, 4, 5, 6.') +
        '</Response>',
    );
  });

  it('adds the code when the text does not contain it', () => {
    expect(buildVoiceTwiml({ text: 'Hello from Portcullis.', code: '42a7' })).toContain(say('Hello from Portcullis. Your code is 4, 2, A, 7.'));
  });

  it('reads a message without a code once', () => {
    expect(buildVoiceTwiml({ text: 'Your password was changed.' })).toBe(
      `<?xml version="1.0" encoding="UTF-8"?><Response>${say('Your password was changed.')}</Response>`,
    );
  });

  it('escapes XML, so an organisation name cannot add TwiML verbs', () => {
    const twiml = buildVoiceTwiml({ text: `Your <Dial>+441632960000</Dial> "Tom's" & co code is 123456.`, code: '123456' });
    expect(twiml).not.toContain('<Dial>');
    expect(twiml).toContain('Your &lt;Dial&gt;+441632960000&lt;/Dial&gt; &quot;Tom&apos;s&quot; &amp; co code is 1, 2, 3, 4, 5, 6.');
    expect(escapeXml(`<&>"'`)).toBe('&lt;&amp;&gt;&quot;&apos;');
    expect(spellOut('007')).toBe('0, 0, 7');
  });
});

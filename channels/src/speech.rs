//! Speech to text for voice notes: an OpenAI-compatible `/audio/transcriptions` endpoint
//! (OpenAI, Groq, a local whisper server). Configured once for the platform; without it, voice
//! notes are answered with [`UNSUPPORTED_REPLY`].

use secrecy::{ExposeSecret, SecretString};

/// What the customer is told when a voice note cannot be transcribed.
pub const UNSUPPORTED_REPLY: &str = "Sorry, I can't listen to voice messages here yet. Could you type your question instead? / عذرًا، لا يمكنني الاستماع إلى الرسائل الصوتية حاليًا. هل يمكنك كتابة سؤالك؟";

/// An OpenAI-compatible transcription endpoint.
#[derive(Clone, Debug)]
pub struct SpeechToText {
    /// Base URL up to `/v1` (the path `/audio/transcriptions` is appended).
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
}

/// Where a voice note's audio can be fetched from the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaRef {
    /// A WhatsApp media id (resolved to a download URL with the access token).
    Whatsapp { id: String },
    /// A Telegram `file_id` (resolved with `getFile`).
    Telegram { file_id: String },
}

/// Downloaded audio.
#[derive(Clone, Debug)]
pub struct Audio {
    pub bytes: Vec<u8>,
    pub mime_type: String,
}

/// Longest audio accepted (Telegram's download limit; Whisper's is 25 MB).
pub const MAX_AUDIO_BYTES: usize = 20 * 1024 * 1024;

impl SpeechToText {
    /// Transcribes `audio`; the text, trimmed (empty speech is an error).
    pub async fn transcribe(&self, http: &reqwest::Client, audio: Audio) -> Result<String, String> {
        let extension = match audio.mime_type.split(';').next().unwrap_or("").trim() {
            "audio/ogg" | "audio/opus" => "ogg",
            "audio/mpeg" => "mp3",
            "audio/mp4" | "audio/aac" | "audio/m4a" => "m4a",
            "audio/amr" => "amr",
            "audio/wav" | "audio/x-wav" => "wav",
            _ => "ogg",
        };
        let part = reqwest::multipart::Part::bytes(audio.bytes)
            .file_name(format!("voice.{extension}"))
            .mime_str(
                audio
                    .mime_type
                    .split(';')
                    .next()
                    .unwrap_or("audio/ogg")
                    .trim(),
            )
            .map_err(|e| format!("audio type: {e}"))?;
        let form = reqwest::multipart::Form::new()
            .text("model", self.model.clone())
            .text("response_format", "json")
            .part("file", part);
        let mut req = http
            .post(format!(
                "{}/audio/transcriptions",
                self.base_url.trim_end_matches('/')
            ))
            .multipart(form);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let resp = req.send().await.map_err(|e| {
            format!(
                "speech-to-text unreachable: {}",
                crate::outbound::describe(e)
            )
        })?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("speech-to-text answered {status}"));
        }
        let text = body["text"].as_str().unwrap_or("").trim().to_owned();
        if text.is_empty() {
            Err("no speech recognised".into())
        } else {
            Ok(text)
        }
    }
}

/// Reads a response body up to [`MAX_AUDIO_BYTES`].
pub(crate) async fn read_limited(resp: reqwest::Response) -> Result<Vec<u8>, String> {
    if resp
        .content_length()
        .is_some_and(|n| n as usize > MAX_AUDIO_BYTES)
    {
        return Err("the audio is too large".into());
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("audio download failed: {}", crate::outbound::describe(e)))?;
    if bytes.len() > MAX_AUDIO_BYTES {
        return Err("the audio is too large".into());
    }
    Ok(bytes.to_vec())
}

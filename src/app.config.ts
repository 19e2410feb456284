import { API_KEY_PATTERN } from './auth/api-key-secret';
import { AppConfig, parseConfig, SettingRules } from './config/config';
import { listProfiles } from './pki/profiles';

/** The rules config/ checks a few settings against, from the layers that own them: auth's key format, pki's profiles. */
export const APP_SETTING_RULES: SettingRules = {
  isApiKey: (value) => API_KEY_PATTERN.test(value),
  renewableProfiles: listProfiles()
    .filter((profile) => profile.renewal)
    .map((profile) => profile.name),
};

/** Reads and validates every setting of the application; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  return parseConfig(env, APP_SETTING_RULES);
}

// The API key lives in sessionStorage only: never in the URL, never in localStorage.
const KEY = 'mhub.key';

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY);
}
